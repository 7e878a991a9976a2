"""Keep the embedded PostgreSQL running for as long as the process that started it serves.

A task of the serving process looks at the server every second. When it has died, the task
starts it again (PostgreSQL recovers from its WAL), retrying with backoff; if the server is
not back within ``EMBEDDED_POSTGRES_RECOVERY_SECONDS``, it gives up and says so through
``on_give_up``: the server then fails ``/livez`` and exits 1, so Docker, systemd or
Kubernetes restart Hearth.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from hearth.db.embedded import EmbeddedPostgres, EmbeddedRestartFailed
from hearth.log import get_logger

log = get_logger(__name__)

CHECK_SECONDS = 1.0
# Between restart attempts: 1 s, doubling, at most this long.
MAX_RESTART_DELAY_SECONDS = 30.0


class EmbeddedSupervisor:
    """Watch one embedded server; restart it when it dies, or give up within a bound."""

    def __init__(
        self,
        embedded: EmbeddedPostgres,
        url: str,
        *,
        recovery_seconds: float,
        on_give_up: Callable[[str], None],
        check_seconds: float = CHECK_SECONDS,
    ) -> None:
        self.embedded = embedded
        self.url = url
        self.recovery_seconds = recovery_seconds
        self.on_give_up = on_give_up
        self.check_seconds = check_seconds
        # Why the database is not there, while it is being restarted; "" when it runs.
        self.outage = ""

    async def run(self) -> None:
        """Watch until cancelled, or until the server could not be brought back."""
        while True:
            await asyncio.sleep(self.check_seconds)
            if await asyncio.to_thread(self.embedded.is_running):
                continue
            reason = await self._recover()
            if reason:
                self.outage = reason
                log.error(
                    "embedded_postgres_gave_up",
                    data_dir=str(self.embedded.pgdata),
                    recovery_seconds=self.recovery_seconds,
                    reason=reason,
                )
                self.on_give_up(
                    f"the embedded PostgreSQL died and could not be restarted within "
                    f"{self.recovery_seconds:g} s (EMBEDDED_POSTGRES_RECOVERY_SECONDS)"
                )
                return

    async def _recover(self) -> str:
        """Restart the server with backoff; "" once it runs, else the last reason it did not."""
        started = time.monotonic()
        self.outage = "the embedded PostgreSQL died; restarting it"
        log.warning("embedded_postgres_died", data_dir=str(self.embedded.pgdata))
        delay, attempt, reason = 1.0, 0, ""
        while True:
            attempt += 1
            try:
                url = await asyncio.to_thread(self.embedded.restart)
            except EmbeddedRestartFailed as exc:
                reason = str(exc)
            else:
                if url == self.url:
                    self.outage = ""
                    log.info(
                        "embedded_postgres_recovered",
                        attempts=attempt,
                        seconds=round(time.monotonic() - started, 2),
                    )
                    return ""
                # The engine cannot follow a server to another socket: a restart of Hearth can.
                return "the restarted server listens on another socket"
            left = self.recovery_seconds - (time.monotonic() - started)
            if left <= 0:
                return reason
            wait = min(delay, left)
            log.warning(
                "embedded_postgres_restart_failed",
                attempt=attempt,
                retry_in_seconds=round(wait, 2),
                reason=reason,
            )
            await asyncio.sleep(wait)
            delay = min(delay * 2, MAX_RESTART_DELAY_SECONDS)
