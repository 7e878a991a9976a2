"""API tokens: create, list, revoke, and recognise the one a request presents.

Services flush, never commit: the request's unit of work or the command's session does.
``authenticate`` is the exception that proves it: it is its own short unit of work, so a
refused data request still records nothing and a successful one its use. It is skipped for
a token the process verified a few seconds ago (``hearth.access.cache``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.access import repository
from hearth.access.cache import GrantCache, Verified
from hearth.access.tokens import (
    NAME_PATTERN,
    SCOPES,
    fingerprint,
    looks_like_token,
    new_token,
    shown_part,
)
from hearth.db.unit import Sessions, unit_of_work
from hearth.errors import HearthError
from hearth.log import get_logger
from hearth.models import ApiToken

log = get_logger(__name__)

# last_used_at is for the operator ("is this token still in use?"), not an access log:
# written at most once a minute per token, not once per request.
USE_RECORD_INTERVAL = timedelta(minutes=1)
MAX_EXPIRY_DAYS = 3650


class InvalidToken(HearthError):
    """A token cannot be created as asked: 422, the reason per field."""

    status_code = 422


class DuplicateToken(HearthError):
    """A token of that name exists already (revoked ones too: names are never reused)."""

    status_code = 409


class UnknownToken(HearthError):
    """No token of that name."""

    status_code = 404


class RefusedToken(Exception):
    """The bearer token a request presented is not one Hearth accepts; ``reason`` says why,
    without the secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class NewToken:
    """A token just created: its row, and its secret, which is never available again."""

    row: ApiToken
    secret: str


@dataclass(frozen=True)
class Grant:
    """What an accepted token lets its holder do."""

    name: str
    scopes: frozenset[str]


def validate(name: str, scopes: Iterable[str], expires_days: int | None) -> list[str]:
    """The scopes as stored (in SCOPES' order), or ``InvalidToken`` naming every bad field."""
    errors: dict[str, str] = {}
    if not NAME_PATTERN.fullmatch(name):
        errors["name"] = "1 to 64 characters of letters, digits, '_', '.' and '-'"
    wanted = set(scopes)
    if unknown := sorted(wanted - set(SCOPES)):
        errors["scopes"] = f"unknown scope {', '.join(unknown)}; known: {', '.join(SCOPES)}"
    elif not wanted:
        errors["scopes"] = f"give at least one of {', '.join(SCOPES)}"
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        errors["expires_days"] = f"a number of days from 1 to {MAX_EXPIRY_DAYS}, or none"
    if errors:
        summary = "; ".join(f"{field}: {reason}" for field, reason in errors.items())
        raise InvalidToken(f"Cannot create the token: {summary}.", field_errors=errors)
    return [scope for scope in SCOPES if scope in wanted]


async def create(
    session: AsyncSession,
    name: str,
    scopes: Iterable[str],
    expires_days: int | None = None,
) -> NewToken:
    """Store a new token (its hash) and return its secret, this once."""
    ordered = validate(name, scopes, expires_days)
    if await repository.by_name(session, name) is not None:
        raise DuplicateToken(f"A token named {name!r} exists already; choose another name.")
    secret = new_token()
    now = datetime.now(UTC)
    row = ApiToken(
        name=name,
        token_sha256=fingerprint(secret),
        prefix=shown_part(secret),
        scopes=ordered,
        created_at=now,
        expires_at=now + timedelta(days=expires_days) if expires_days else None,
    )
    try:
        await repository.add(session, row)
    except IntegrityError:  # created at the same moment elsewhere
        raise DuplicateToken(
            f"A token named {name!r} exists already; choose another name."
        ) from None
    log.info("api_token_created", name=name, scopes=ordered, expires_at=row.expires_at)
    return NewToken(row, secret)


async def list_tokens(session: AsyncSession) -> Sequence[ApiToken]:
    """Every token, newest first, revoked and expired ones included."""
    return await repository.all_tokens(session)


async def revoke(session: AsyncSession, name: str) -> ApiToken:
    """Refuse the token called ``name`` from now on; revoking it again changes nothing."""
    row = await repository.by_name(session, name)
    if row is None:
        raise UnknownToken(f"No token named {name!r}.")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        await session.flush()
        log.info("api_token_revoked", name=name)
    return row


async def authenticate(
    sessions: Sessions | None, presented: str, cache: GrantCache | None = None
) -> Grant:
    """The grant of the token ``presented``, recording its use; ``RefusedToken`` when it is
    unknown, revoked or expired, ``DatabaseUnavailable`` (503) when it cannot be looked up.
    With ``cache``, a token verified a few seconds ago is not looked up again."""
    if not looks_like_token(presented):
        raise _refused(presented, "not a Hearth API token")
    key = fingerprint(presented)
    now = datetime.now(UTC)
    if cache is not None and (known := cache.get(key)) is not None:
        if known.expires_at is not None and known.expires_at <= now:
            cache.discard(key)
            raise _refused(presented, _expired(known.name, known.expires_at))
        # Once a minute the use is due to be recorded: that request looks the token up
        # again, which also catches a revocation made elsewhere a little sooner.
        if not _use_due(known.used_at, now):
            return Grant(known.name, known.scopes)
    generation = cache.generation if cache is not None else 0
    try:
        verified = await _look_up(sessions, presented, key, now)
    except RefusedToken:
        if cache is not None:
            cache.discard(key)
        raise
    if cache is not None:
        cache.put(key, verified, generation)
    return Grant(verified.name, verified.scopes)


async def _look_up(sessions: Sessions | None, presented: str, key: str, now: datetime) -> Verified:
    """Ask the database about the token (its own short unit of work), recording its use."""
    async with unit_of_work(sessions) as unit:
        row = await repository.by_fingerprint(unit.session, key)
        if row is None:
            raise _refused(presented, "unknown token")
        if row.revoked_at is not None:
            raise _refused(presented, f"the token {row.name!r} was revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise _refused(presented, _expired(row.name, row.expires_at))
        used_at = row.last_used_at
        if _use_due(used_at, now):
            await repository.record_use(unit.session, row.id, now, USE_RECORD_INTERVAL)
            used_at = now
        return Verified(row.name, frozenset(row.scopes), row.expires_at, used_at)


def _use_due(used_at: datetime | None, now: datetime) -> bool:
    return used_at is None or used_at <= now - USE_RECORD_INTERVAL


def _expired(name: str, expires_at: datetime) -> str:
    return f"the token {name!r} expired at {expires_at.isoformat(timespec='seconds')}"


def _refused(presented: str, reason: str) -> RefusedToken:
    # The shown part only, and only of a Hearth token: enough to tell which script holds
    # it, nothing to guess with (the start of some other secret is not shown at all).
    shown = shown_part(presented) if looks_like_token(presented) else None
    log.warning("api_token_refused", reason=reason, prefix=shown)
    return RefusedToken(reason)
