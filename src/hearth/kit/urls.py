"""URL helpers shared by settings, logs and health details. ``mask_url`` (``mask_urls`` for
free text) is how every URL is shown: in a page, a health detail, an error or a log line."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

from pydantic_core import PydanticCustomError

# scheme://user:password@host — the password ends at the last '@' before the host; it may
# hold further '@' signs but no white space or '/'.
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?:[^\s@/]|@(?=[^\s/]*@))*@")

# scheme://name@host, a user name alone: often a token (https://<token>@github.com/…).
_URL_USER_ONLY = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://)[^:/@\s?#]+@")

# A URL inside free text: a scheme, then anything up to white space, a quote or a bracket.
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>]+")

# Query parameters whose values are no secret and help a reader: Azure OpenAI's version.
PUBLIC_QUERY_NAMES = frozenset({"api-version"})

_DEFAULT_PORTS = {"http": 80, "https": 443}

_DATABASE_SCHEMES = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+psycopg_async": "postgresql+psycopg",
}


def mask_url(url: str) -> str:
    """``url`` fit to show anyone: its password, every query value but those in
    ``PUBLIC_QUERY_NAMES``, and its fragment become ``***``; scheme, host, port and path
    stay. ``http://u:pw@h/v1?token=s`` is shown ``http://u:***@h/v1?token=***``."""
    masked = _URL_USER_ONLY.sub(r"\1***@", _URL_PASSWORD.sub(r"\1***@", url))
    # With the password masked, the first '?' or '#' after the scheme ends the path.
    after_scheme = masked.find("://") + 1
    marks = [at for at in (masked.find(mark, after_scheme) for mark in "?#") if at >= 0]
    if not marks:
        return masked
    head, rest = masked[: min(marks)], masked[min(marks) :]
    query, hash_mark, fragment = rest.partition("#")
    if query:
        head += "?" + "&".join(_mask_parameter(p) for p in query[1:].split("&"))
    if hash_mark:
        head += "#***" if fragment else "#"
    return head


def mask_urls(text: str) -> str:
    """``text`` with every URL in it shown as ``mask_url`` shows it: for messages, details
    and log lines, which quote URLs (libraries' errors do)."""
    return _URL_IN_TEXT.sub(lambda match: mask_url(match[0]), text)


def _mask_parameter(parameter: str) -> str:
    name, equals, value = parameter.partition("=")
    if not equals:
        return "***" if name else ""  # a bare value, ``?sk-…``, may be the secret itself
    if name.lower() in PUBLIC_QUERY_NAMES or not value:
        return parameter
    return f"{name}=***"


def origin(url: str) -> str:
    """The origin of an http(s) URL, ``scheme://host:port``, lower-cased, with the default
    port spelled out: two URLs reach the same server when their origins are equal.
    ``ValueError`` when ``url`` names no host or a bad port."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError("names no host")
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def split_url(value: str, example: str) -> SplitResult:
    """``urlsplit`` for settings: a malformed URL becomes a readable validation error."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (parses the port, raising on a bad one)
    except ValueError as exc:
        raise PydanticCustomError(
            "url",
            "is not a valid URL ({reason}); expected something like {example}",
            {"reason": str(exc), "example": example},
        ) from None
    return parts


def normalize_database_url(value: str) -> str:
    """Check a PostgreSQL URL and return it with the psycopg 3 driver named.

    Accepts ``postgres://``, ``postgresql://`` and ``postgresql+psycopg://``.
    """
    url = value.strip()
    parts = split_url(url, "postgresql://user:password@host:5432/hearth")
    driver = _DATABASE_SCHEMES.get(parts.scheme.lower())
    if driver is None:
        shown = parts.scheme or url[:20]
        raise PydanticCustomError(
            "database_url",
            "must be a PostgreSQL URL like postgresql://user:password@host:5432/hearth "
            "(got scheme '{scheme}')",
            {"scheme": shown},
        )
    if not parts.hostname and "host=" not in parts.query:
        raise PydanticCustomError(
            "database_url",
            "names no host; expected postgresql://user:password@host:5432/hearth",
        )
    if not parts.path.strip("/"):
        raise PydanticCustomError(
            "database_url", "names no database; add it after the host, e.g. .../hearth"
        )
    return urlunsplit((driver, parts.netloc, parts.path, parts.query, parts.fragment))


def libpq_url(url: str) -> str:
    """SQLAlchemy's ``postgresql+psycopg://`` as the ``postgresql://`` libpq reads."""
    scheme, separator, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{separator}{rest}"
