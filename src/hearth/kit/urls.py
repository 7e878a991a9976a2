"""URL helpers shared by settings, logs and health details."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

from pydantic_core import PydanticCustomError

# scheme://user:password@host — the password ends at the last '@' before the host; it may
# hold further '@' signs but no white space or '/'.
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?:[^\s@/]|@(?=[^\s/]*@))*@")

_DATABASE_SCHEMES = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+psycopg_async": "postgresql+psycopg",
}


def mask_url_password(text: str) -> str:
    """Replace the password of every URL in ``text`` with ``***``:
    ``postgresql://u:pw@h/db`` becomes ``postgresql://u:***@h/db``."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def without_credentials(url: str) -> str:
    """The URL with any user name and password removed, for health details and pages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


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
