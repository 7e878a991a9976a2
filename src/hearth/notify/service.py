"""Decide, every few seconds, which notices are due, and send each from one replica only.

The shared truth is the ``health_events`` table, one row per change of a component's status
(written by the health monitor). A notice is due when a component's latest change is
``unreachable`` and older than the grace period (``down``), or ``ok`` right after a change
whose "down" was sent (``recovered``); a blip shorter than the grace period sends neither.
A replica sends a notice only after claiming its row (``notified_at``), which one replica
alone can do, and only for a status its own health checks agree with: a row left from before
a restart is not news. Changes older than ``HORIZON_SECONDS`` are never announced, so that
turning notifications on does not replay old history.

The database itself cannot be watched through a table it holds: its outage is read from
this process's own checks, and the replicas agree through Redis (``SET NX`` for "down",
``DEL`` for "recovered") when there is one; without Redis each replica speaks for itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hearth.db.unit import Sessions
from hearth.errors import StartupError
from hearth.health.service import ComponentState, HealthService
from hearth.kit.urls import mask_urls
from hearth.log import get_logger
from hearth.notify import repository
from hearth.notify.repository import Pending
from hearth.notify.schemas import Notice
from hearth.notify.sender import AppriseSender, UnusableNotifyUrl
from hearth.notify.urls import BadNotifyUrl, split_urls

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = get_logger(__name__)

POLL_SECONDS = 5.0
HORIZON_SECONDS = 24 * 3600.0
DATABASE = "db"
DATABASE_DOWN_KEY = "hearth:notify:db-down"
_DATABASE_DOWN_TTL = 7 * 24 * 3600  # a replica that dies mid-outage must not silence the next


class Notifier:
    """Sends "down" and "recovered" notices for every component, once per change."""

    def __init__(  # noqa: PLR0913 (keyword-only: what the runtime hands over)
        self,
        sender: AppriseSender,
        sessions: Sessions,
        health: HealthService,
        *,
        grace: float,
        redis: Redis | None = None,
        poll_seconds: float = POLL_SECONDS,
        horizon: float = HORIZON_SECONDS,
        link: str | None = None,
    ) -> None:
        self.sender = sender
        self.sessions = sessions
        self.health = health
        self.grace = grace
        self.redis = redis
        self.poll_seconds = poll_seconds
        self.horizon = horizon
        self.link = link
        self._database_down_since: float | None = None
        self._sending: set[asyncio.Task[object]] = set()

    async def run(self) -> None:
        """Poll until cancelled; a failed poll (the database restarting) is logged and the
        next one tried."""
        while True:
            try:
                await self.poll()
            except Exception as exc:  # noqa: BLE001 (the loop must outlive any one poll)
                log.warning("notify_poll_failed", reason=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.poll_seconds)

    async def poll(self) -> list[Notice]:
        """Claim every notice due now and start sending it; the notices claimed."""
        states = self.health.states()
        claimed = await self._watch_database(states.get(DATABASE))
        async with self.sessions() as session:
            rows = await repository.pending(
                session, grace=self.grace, horizon=self.horizon, skip=(DATABASE,)
            )
        for row in rows:
            local = states.get(row.component)
            if local is None or local.result.status != row.status:
                continue  # not seen by this process's own checks (yet): not news
            notice = _due(row)
            if notice is not None and await self._claim(row.id):
                claimed.append(notice)
                self._dispatch(notice)
        return claimed

    async def _claim(self, event_id: int) -> bool:
        async with self.sessions() as session, session.begin():
            return await repository.claim(session, event_id)

    async def _watch_database(self, state: ComponentState | None) -> list[Notice]:
        if state is None:
            return []
        status = state.result.status
        if status == "unreachable" and self._database_down_since is None:
            if time.time() - state.changed_at < self.grace:
                return []
            self._database_down_since = state.changed_at
            if await self._shared_claim(down=True):
                notice = _down(DATABASE, _at(state.changed_at), state.result.detail)
                self._dispatch(notice)
                return [notice]
        elif status == "ok" and self._database_down_since is not None:
            since, self._database_down_since = self._database_down_since, None
            if await self._shared_claim(down=False):
                notice = _recovered(DATABASE, _at(state.changed_at), _at(since), "")
                self._dispatch(notice)
                return [notice]
        return []

    async def _shared_claim(self, *, down: bool) -> bool:
        """Whether this replica sends the database's notice: the one that set (or deleted)
        the Redis key; every replica when there is no Redis to agree through."""
        if self.redis is None:
            return True
        from redis.exceptions import RedisError  # imported only when REDIS_URL is set

        try:
            if down:
                return bool(
                    await self.redis.set(DATABASE_DOWN_KEY, "1", nx=True, ex=_DATABASE_DOWN_TTL)
                )
            return bool(await self.redis.delete(DATABASE_DOWN_KEY))
        except (RedisError, OSError) as exc:
            # Two notices are better than none while both stores are down.
            log.warning("notify_claim_unshared", component=DATABASE, reason=str(exc))
            return True

    def _dispatch(self, notice: Notice) -> None:
        if self.link:
            notice = replace(notice, body=f"{notice.body}\nStatus page: {self.link}")
        # A send may take a minute of retries: the next poll must not wait for it.
        task: asyncio.Task[object] = asyncio.create_task(
            self.sender.send(notice), name="notify-send"
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def drain(self) -> None:
        """Wait for the notices being sent."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def close(self, *, grace_seconds: float = 5.0) -> None:
        """Give the notices being sent a few seconds, then stop waiting for them."""
        if self._sending:
            _, pending = await asyncio.wait(self._sending, timeout=grace_seconds)
            for task in pending:
                task.cancel()
        self.sender.close()


def _due(row: Pending) -> Notice | None:
    """The notice ``row`` calls for, if any."""
    alerted = row.notice_status == "unreachable" and not row.ok_since_notice
    if row.status == "unreachable" and row.past_grace and not alerted:
        return _down(row.component, row.changed_at, row.detail)
    if row.status == "ok" and row.notice_status == "unreachable":
        return _recovered(row.component, row.changed_at, row.notice_changed_at, row.detail)
    return None


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _lasted(start: datetime, end: datetime) -> str:
    seconds = max(0, int((end - start).total_seconds()))
    if seconds < 120:  # noqa: PLR2004 (two minutes read better as seconds)
        return f"{seconds} s"
    if seconds < 7200:  # noqa: PLR2004
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _down(component: str, since: datetime, detail: str) -> Notice:
    body = f"{component} has been unreachable since {_when(since)}."
    if detail:
        body += f"\nDetail: {mask_urls(detail)}"
    return Notice(f"Hearth: {component} is down", body, "failure")


def _recovered(component: str, at: datetime, down_since: datetime | None, detail: str) -> Notice:
    body = f"{component} is ok again since {_when(at)}"
    if down_since is not None:
        body += f", after being down from {_when(down_since)} ({_lasted(down_since, at)})"
    body += "."
    if detail:
        body += f"\nDetail: {mask_urls(detail)}"
    return Notice(f"Hearth: {component} recovered", body, "success")


def sample_notice(actor: str) -> Notice:
    """The notice the config page's button sends."""
    return Notice(
        "Hearth: test notification",
        f"Sent from the config page by {actor} at {_when(datetime.now(UTC))}. "
        "If you read this, Hearth's notices reach you.",
        "info",
    )


@asynccontextmanager
async def watching(
    urls: str, sessions: Sessions, health: HealthService, *, grace: float, redis: Redis | None
) -> AsyncIterator[AppriseSender]:
    """Build the sender for ``urls`` (NOTIFY_URLS) and run the notifier beside the app; yield
    the sender (the config page's test button uses it). A URL Apprise cannot use stops
    start-up, naming its position and scheme, never the URL: an operator who set
    NOTIFY_URLS counts on notices, and a warning in a log would go unread until the outage."""
    try:
        sender = AppriseSender.build(split_urls(urls))
    except (BadNotifyUrl, UnusableNotifyUrl) as exc:
        raise StartupError(
            "Hearth cannot start: 1 setting needs attention.\n"
            f"  NOTIFY_URLS: {exc}\n"
            "Settings come from the environment, the .env file, or secret files "
            "(every variable is described in .env.example)."
        ) from None
    notifier = Notifier(sender, sessions, health, grace=grace, redis=redis)
    log.info("notifications_on", receivers=sender.labels, grace_seconds=grace)
    polling = asyncio.create_task(notifier.run(), name="notifier")
    try:
        yield sender
    finally:
        polling.cancel()
        with suppress(asyncio.CancelledError):
            await polling
        await notifier.close()
