"""Recording security-relevant actions, reading them back, and forgetting them after 90 days.

Two ways to record, chosen by what the caller hands over:

- ``within=`` a unit of work (or session): the event is part of that transaction. A settings
  save and its record commit together or not at all, and a failure to record fails the save.
- nothing: the event is written in a transaction of its own, and a failure to write it is
  logged (``audit_not_recorded``) and swallowed. A login, a logout or a connection test must
  not fail because the trail could not be written, e.g. while the database is down.

No secret enters the trail: values under a sensitive-looking key are masked whole, URLs lose
their user info and query values, and any configured secret's value is masked wherever it
appears (an operator who pastes ``LLM_API_KEY`` into the model field leaves ``***`` here).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from hearth.audit import repository
from hearth.db.engine import error_reason
from hearth.db.unit import Sessions, UnitOfWork
from hearth.log import get_logger
from hearth.log.redaction import MASK, SENSITIVE_KEY, Redactor
from hearth.models import AuditEvent

log = get_logger(__name__)

Action = Literal[
    "login_succeeded",
    "login_failed",
    "login_throttled",
    "logout",
    "settings_saved",
    "settings_imported",
    "connection_tested",
    "notification_tested",
    "token_created",
    "token_revoked",
    "task_retried",
]
ACTIONS: tuple[Action, ...] = get_args(Action)

KEEP_DAYS = 90
# Pruning runs at start-up and then with a recording, at most this often.
PRUNE_EVERY_SECONDS = 24 * 3600
# A client refused by the login throttle can send thousands of attempts a second: one row a
# minute per client is kept, with the count of refusals not recorded since the previous one.
QUIET_SECONDS: dict[str, float] = {"login_throttled": 60.0}
_QUIET_MEMORY = 10_000  # clients remembered for QUIET_SECONDS before the oldest are dropped

# Query parameters whose values are shown: they name an API version, never a credential.
_SHOWN_PARAMETERS = frozenset({"api-version"})
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s\"'<>]+")


class AuditTrail:
    """Writes and prunes the ``audit_events`` table of one process."""

    def __init__(
        self,
        sessions: Sessions | None,
        *,
        secrets: Iterable[str] = (),
        sensitive_keys: Iterable[str] = (),
    ) -> None:
        self.sessions = sessions
        self._redactor = Redactor(secrets)
        self._sensitive = frozenset(sensitive_keys)
        self._pruned_at: float | None = None  # never: the first recording prunes
        self._quiet_since: dict[tuple[str, str | None], float] = {}
        self._unrecorded: dict[tuple[str, str | None], int] = {}

    async def record(
        self,
        action: Action,
        *,
        actor: str,
        client: str | None,
        within: UnitOfWork | AsyncSession | None = None,
        **details: object,
    ) -> None:
        """Record ``action`` by ``actor`` from ``client`` with ``details`` (JSON-able values;
        secrets masked). ``within`` a unit of work: in its transaction, failures raise. Else
        in a transaction of its own, and a failure is only logged."""
        if (repeated := self._quieted(action, client)) is None:
            return
        if repeated:
            details["unrecorded_before"] = repeated
        event = {
            "action": action,
            "actor": self._text(actor),
            "client": self._text(client) if client is not None else None,
            "details": self.clean(details),
        }
        if within is not None:
            session = within.session if isinstance(within, UnitOfWork) else within
            await self._write(session, event)
            return
        if self.sessions is None:
            log.warning("audit_not_recorded", action=action, reason="no database configured")
            return
        try:
            async with self.sessions() as session, session.begin():
                await self._write(session, event)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("audit_not_recorded", action=action, reason=error_reason(exc))

    async def _write(self, session: AsyncSession, event: dict[str, Any]) -> None:
        repository.add(session, **event)
        if self._prune_due():
            await self._prune(session)
        await session.flush()

    async def prune(self) -> int:
        """Delete the events older than 90 days, in a transaction of its own; returns how
        many. A failure is logged, not raised: start-up goes on without it."""
        if self.sessions is None:
            return 0
        try:
            async with self.sessions() as session, session.begin():
                return await self._prune(session)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("audit_prune_failed", reason=error_reason(exc))
            return 0

    async def _prune(self, session: AsyncSession) -> int:
        cutoff = datetime.now(UTC) - timedelta(days=KEEP_DAYS)
        deleted = await repository.delete_older_than(session, cutoff)
        self._pruned_at = time.monotonic()
        if deleted:
            log.info("audit_pruned", deleted=deleted, keep_days=KEEP_DAYS)
        return deleted

    def _prune_due(self) -> bool:
        return self._pruned_at is None or time.monotonic() - self._pruned_at >= PRUNE_EVERY_SECONDS

    def _quieted(self, action: str, client: str | None) -> int | None:
        """None when this event is not to be recorded (its client was recorded doing the same
        a moment ago); else how many such events went unrecorded before it."""
        interval = QUIET_SECONDS.get(action)
        if interval is None:
            return 0
        now = time.monotonic()
        key = (action, client)
        since = self._quiet_since.get(key)
        if since is not None and now - since < interval:
            self._unrecorded[key] = self._unrecorded.get(key, 0) + 1
            return None
        if len(self._quiet_since) >= _QUIET_MEMORY:
            self._forget_quiet(now)
        self._quiet_since[key] = now
        return self._unrecorded.pop(key, 0)

    def _forget_quiet(self, now: float) -> None:
        for key, since in list(self._quiet_since.items()):
            if now - since >= QUIET_SECONDS.get(key[0], 0.0):
                del self._quiet_since[key]
                self._unrecorded.pop(key, None)

    def clean(self, details: Mapping[str, object]) -> dict[str, object]:
        """``details`` as the trail may hold them: JSON types only, no secret in them."""
        return {
            self._text(str(name)): self._value(value, str(name)) for name, value in details.items()
        }

    def _value(self, value: object, key: str = "") -> object:
        if key and (key in self._sensitive or SENSITIVE_KEY.search(key)):
            return value if value is None or isinstance(value, bool) else MASK
        if isinstance(value, Mapping):
            return self.clean(value)
        if isinstance(value, list | tuple | set | frozenset):
            return [self._value(item) for item in value]
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        return self._text(value.isoformat() if isinstance(value, datetime) else str(value))

    def _text(self, text: str) -> str:
        # PostgreSQL's JSON cannot hold a NUL character.
        return self._redactor.scrub_text(mask_urls(text)).replace("\x00", "\ufffd")


def mask_urls(text: str) -> str:
    """Every URL in ``text`` without user info or query values (``api-version`` aside):
    ``http://u:p@h/x?token=s`` becomes ``http://***@h/x?token=***``."""
    return _URL.sub(_masked_url, text)


def _masked_url(match: re.Match[str]) -> str:
    try:
        parts = urlsplit(match.group(0))
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = "&".join(map(_masked_parameter, parts.query.split("&"))) if parts.query else ""
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _masked_parameter(item: str) -> str:
    name, equals, value = item.partition("=")
    if not equals:
        return MASK if name else name
    return item if name.lower() in _SHOWN_PARAMETERS or not value else f"{name}={MASK}"


def changes(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``{key: {"from": old, "to": new}}`` for each key of ``after`` whose value differs
    from ``before`` (``from`` is None for a key ``before`` did not hold)."""
    return {
        key: {"from": before.get(key), "to": value}
        for key, value in sorted(after.items())
        if before.get(key) != value
    }


def client_of(request: Request) -> str | None:
    """The client's address as the server sees it (the proxy's, unless it is trusted)."""
    return request.client.host if request.client else None


async def newest(
    session: AsyncSession, *, limit: int, before: int | None = None
) -> Sequence[AuditEvent]:
    """At most ``limit`` events, newest first; with ``before``, those older than that one."""
    return await repository.newest(session, limit=limit, before=before)


def describe(details: Mapping[str, Any]) -> str:
    """The details in one line for people: ``llm_model: "a" → "b"; service: db``."""
    parts: list[str] = []
    for name, value in details.items():
        if name == "changes" and isinstance(value, Mapping):
            parts.extend(
                f"{key}: {_quoted(change.get('from'))} → {_quoted(change.get('to'))}"
                if isinstance(change, Mapping)
                else f"{key}: {change}"
                for key, change in value.items()
            )
        elif isinstance(value, list):
            parts.append(f"{name}: {', '.join(map(str, value))}")
        else:
            parts.append(f"{name}: {value}")
    return "; ".join(parts)


def _quoted(value: object) -> str:
    return "(unset)" if value is None else f'"{value}"'
