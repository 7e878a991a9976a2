"""``NOTIFY_URLS`` read as a list of Apprise URLs, without Apprise: the settings check them
at start-up in every process, and only the web app imports Apprise to send.

Nothing here returns a URL for a log line: only its position and its scheme (``ntfy``,
``tgram``), fixed names that carry no token.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

from hearth.log.redaction import SENSITIVE_KEY

# Entries are separated by spaces or commas, but a comma inside a URL stays there
# (``mailto://…?to=a@example.com,b@example.com``): a comma separates only before the next
# ``scheme://``. No URL holds a space.
_COMMA = re.compile(r",+(?=[A-Za-z][A-Za-z0-9+.\-]*://)")
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://\S+$")
# Parts shorter than this are ordinary words (``a``, ``ops``), not credentials.
_MIN_PART = 4
# A part masked in every log line must look like a token, or ordinary words would go too.
_MIN_TOKEN = 8


class BadNotifyUrl(ValueError):
    """An entry of NOTIFY_URLS that is not a URL; says which one, never what it holds."""

    def __init__(self, position: int, count: int) -> None:
        super().__init__(
            f"entry {position} of {count} is not a URL (scheme://…); separate the URLs "
            "with spaces or commas"
        )
        self.position = position


def split_urls(text: str) -> list[str]:
    """The URLs in ``text``, in order; raises ``BadNotifyUrl`` for an entry that is not one."""
    pieces = [piece for chunk in text.split() for piece in _COMMA.split(chunk)]
    entries = [entry for piece in pieces if (entry := piece.strip(","))]
    for position, entry in enumerate(entries, start=1):
        if not _URL.match(entry):
            raise BadNotifyUrl(position, len(entries))
    return entries


def scheme_of(url: str) -> str:
    """The URL's scheme, lower-cased: the one part of it safe to log."""
    return url.split("://", 1)[0].lower()


def secret_parts(url: str) -> list[str]:
    """Every part of ``url`` that may be a credential, to mask in a receiver's error text:
    the URL, its user and password, a host that is no host name (Telegram's bot token and
    Discord's webhook id sit there), path segments, and the values of query parameters
    named like credentials (``?token=``, ``?apikey=``); not options such as ``mode=``."""
    rest = url.split("://", 1)[1] if "://" in url else url
    parts = urlsplit("x://" + rest)
    netloc = parts.netloc
    userinfo, _, host = netloc.rpartition("@")
    found = [url, rest, userinfo, *userinfo.split(":")]
    if not _looks_like_host_name(host):
        found += [host, *host.split(":")]
    found += [unquote(segment) for segment in parts.path.split("/")]
    found += [
        unquote(value)
        for name, value in parse_qsl(parts.query, keep_blank_values=False)
        if SENSITIVE_KEY.search(name)
    ]
    unique = {part for part in found if len(part) >= _MIN_PART}
    return sorted(unique, key=len, reverse=True)


def token_parts(url: str) -> list[str]:
    """The URL and those of its ``secret_parts`` that look like tokens (8 characters or
    more, with a digit or both cases): safe to mask in every log line of the process."""
    return [url] + [
        part
        for part in secret_parts(url)
        if len(part) >= _MIN_TOKEN
        and (any(c.isdigit() for c in part) or (part.lower() != part and part.upper() != part))
    ]


def _looks_like_host_name(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name == "localhost" or "." in name or re.fullmatch(r"[a-z][a-z-]*", name) is not None
