"""Operator sessions kept server-side, so that they can end: at logout, when
``ADMIN_PASSWORD`` changes, and when they expire.

The cookie carries a random session id; PostgreSQL keeps its SHA-256 with the times and a
fingerprint of the password it was opened under. Each process remembers the sessions it has
confirmed for ``check_seconds`` (htmx polls every few seconds; the database is asked once in
that time), and the sessions it has ended, which no answer of the database can bring back.

While the database is unreachable: a session this process confirmed before keeps working
until its expiry (the operator can still read health details during the outage); a session
it never confirmed is no session; logging in answers 503; logging out ends the session on
this process at once, and in the database as soon as it is reachable again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.auth import repository
from hearth.db.engine import error_reason
from hearth.db.unit import DatabaseUnavailable, Sessions, unit_of_work
from hearth.log import get_logger

log = get_logger(__name__)

# The same cost as the password check (auth/service.py): guessing the password from a copy
# of the table and SECRET_KEY costs ~50 ms and 16 MB a guess.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def password_fingerprint(secret_key: str, password: str | None) -> str:
    """What a session records of the password it was opened under: a slow hash salted with
    a key derived from ``SECRET_KEY``. Empty when no password is set (then no session is
    open). CPU-bound for ~50 ms: call it in a worker thread."""
    if not password:
        return ""
    salt = hmac.new(secret_key.encode(), b"hearth operator session", hashlib.sha256).digest()
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, **_SCRYPT).hex()


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class _Confirmed:
    expires_at: datetime
    at: float  # time.monotonic() of the database's last yes


class OperatorSessionStore:
    """The operator sessions of one Hearth process, backed by the ``operator_sessions`` table.
    Satisfies ``hearth.web.operator.OperatorSessions``."""

    def __init__(
        self,
        sessions: Sessions | None,
        *,
        fingerprint: str,
        lifetime_seconds: float,
        check_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._fingerprint = fingerprint
        self._lifetime = timedelta(seconds=lifetime_seconds)
        self._check_seconds = check_seconds
        self._confirmed: dict[str, _Confirmed] = {}
        self._ended: dict[str, datetime] = {}  # id hash -> when forgetting it is safe
        self._unwritten: set[str] = set()  # ended here, not yet recorded in the database
        self._unreachable = False

    async def start(self) -> str:
        """Open a session and return its id, for the cookie. Deletes the sessions that have
        ended meanwhile. ``DatabaseUnavailable`` (503) when it cannot be recorded."""
        session_id = secrets.token_urlsafe(32)
        id_hash = _hash(session_id)
        async with unit_of_work(self._sessions) as unit:
            written = await self._write_ended(unit.session)
            removed = await repository.delete_finished(unit.session)
            expires_at = await repository.insert_session(
                unit.session, id_hash, self._fingerprint, self._lifetime
            )
        self._unwritten -= written
        self._forget_finished()
        self._confirmed[id_hash] = _Confirmed(expires_at, time.monotonic())
        if removed:
            log.info("operator_sessions_removed", count=removed)
        return session_id

    async def is_active(self, session_id: str) -> bool:
        """Whether ``session_id`` names an open session. Never raises: a database that cannot
        answer leaves the sessions this process has confirmed, and no other."""
        id_hash = _hash(session_id)
        if id_hash in self._ended or not self._fingerprint:
            return False
        known = self._confirmed.get(id_hash)
        if known is not None:
            if known.expires_at <= datetime.now(UTC):
                del self._confirmed[id_hash]
                return False
            if time.monotonic() - known.at < self._check_seconds:
                return True
        try:
            expires_at = await self._confirm(id_hash)
        except (SQLAlchemyError, OSError, DatabaseUnavailable) as exc:
            self._note_unreachable(exc)
            return known is not None and id_hash not in self._ended  # ended while it failed
        self._note_reachable()
        if expires_at is None or id_hash in self._ended:  # ended while the query ran
            self._confirmed.pop(id_hash, None)
            return False
        self._confirmed[id_hash] = _Confirmed(expires_at, time.monotonic())
        return True

    async def end(self, session_id: str) -> None:
        """End the session: at once in this process, in the database now or, if it cannot be
        reached, the next time this process reaches it. Never raises."""
        id_hash = _hash(session_id)
        known = self._confirmed.pop(id_hash, None)
        self._ended[id_hash] = known.expires_at if known else datetime.now(UTC) + self._lifetime
        self._unwritten.add(id_hash)
        self._forget_finished()
        try:
            async with unit_of_work(self._sessions) as unit:
                written = await self._write_ended(unit.session)
        except (SQLAlchemyError, OSError, DatabaseUnavailable) as exc:
            log.warning("operator_session_end_deferred", reason=_reason(exc))
            return
        self._unwritten -= written

    async def _confirm(self, id_hash: str) -> datetime | None:
        async with unit_of_work(self._sessions) as unit:
            written = await self._write_ended(unit.session)
            expires_at = await repository.confirm(unit.session, id_hash, self._fingerprint)
        self._unwritten -= written
        return expires_at

    async def _write_ended(self, session: AsyncSession) -> set[str]:
        """Record the sessions ended here while the database was away; which ones."""
        written = set(self._unwritten)
        if written:
            await repository.revoke(session, sorted(written))
        return written

    def _forget_finished(self) -> None:
        """Drop what no request can need any more: sessions past their expiry."""
        now = datetime.now(UTC)
        self._ended = {h: until for h, until in self._ended.items() if until > now}
        self._confirmed = {h: c for h, c in self._confirmed.items() if c.expires_at > now}

    def _note_unreachable(self, exc: BaseException) -> None:
        if not self._unreachable:  # once per outage, not once per request
            log.warning("operator_sessions_unverifiable", reason=_reason(exc))
        self._unreachable = True

    def _note_reachable(self) -> None:
        if self._unreachable:
            log.info("operator_sessions_verifiable")
        self._unreachable = False


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, DatabaseUnavailable) else error_reason(exc)
