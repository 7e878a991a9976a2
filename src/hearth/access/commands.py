"""``hearth token create|list|revoke``: the Tokens page for scripts and terminals.

Like ``hearth settings export``, they start nothing: they connect to ``DATABASE_URL`` or to
the embedded PostgreSQL a running ``hearth serve`` (``make run``) has started.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from hearth.access import service
from hearth.models import ApiToken


def created_lines(new: service.NewToken) -> list[str]:
    """What ``hearth token create`` prints: a description, then the token alone last."""
    row = new.row
    scopes, expires = ", ".join(row.scopes), _when(row.expires_at, "never")
    return [
        f"Created the token {row.name!r}: scopes {scopes}, expires {expires}.",
        "Copy it now; Hearth keeps only its hash and cannot show it again:",
        new.secret,
    ]


def revoked_line(name: str, cache_seconds: float) -> str:
    """What ``hearth token revoke`` prints: when running servers start refusing the token.
    This process cannot reach their caches of verified tokens (``hearth.access.cache``)."""
    if cache_seconds <= 0:
        return f"Revoked the token {name!r}: it is refused from now on."
    return (
        f"Revoked the token {name!r}: running Hearth processes refuse it within "
        f"{cache_seconds:g} s (API_TOKEN_CACHE_SECONDS; the Tokens page revokes at once)."
    )


def table_lines(rows: Sequence[ApiToken], now: datetime) -> list[str]:
    """What ``hearth token list`` prints: one aligned row per token, a header first."""
    header = ("NAME", "SCOPES", "STARTS WITH", "CREATED", "LAST USED", "EXPIRES", "STATE")
    body = [
        (
            row.name,
            ",".join(row.scopes),
            row.prefix + "…",
            _when(row.created_at, "-"),
            _when(row.last_used_at, "never"),
            _when(row.expires_at, "never"),
            _state(row, now),
        )
        for row in rows
    ]
    return _aligned([header, *body])


def _state(row: ApiToken, now: datetime) -> str:
    if row.revoked_at is not None:
        return f"revoked {_when(row.revoked_at, '')}"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def _when(moment: datetime | None, otherwise: str) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else otherwise


def _aligned(rows: Iterable[tuple[str, ...]]) -> list[str]:
    rows = list(rows)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
