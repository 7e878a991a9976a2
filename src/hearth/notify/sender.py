"""Send a notice through Apprise to every URL of NOTIFY_URLS, in threads of its own.

Apprise is imported only here, and only when NOTIFY_URLS is set: it loads a hundred plugins.
Each receiver is sent to separately, so that one that is down is retried (with backoff)
without sending the others the notice twice; a send runs in a small thread pool of its own,
under a timeout, so a receiver that hangs can hold neither the event loop (health checks,
requests) nor the default executor that other work shares.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt
from tenacity import wait_exponential as backoff

from hearth.log import get_logger
from hearth.log.redaction import Redactor
from hearth.notify.schemas import Delivery, Notice
from hearth.notify.urls import scheme_of, secret_parts

log = get_logger(__name__)

SEND_TIMEOUT_SECONDS = 10.0
ATTEMPTS = 3
BACKOFF_SECONDS = 2.0  # then 4 s: a receiver restarting gets a chance
_THREADS = 4
_APPRISE_LOGGER = "apprise"
_REASON_LENGTH = 300
_NETWORK_ERROR = "Socket Exception:"


class UnusableNotifyUrl(ValueError):
    """Apprise cannot send to an entry of NOTIFY_URLS (unknown scheme, missing parts)."""

    def __init__(self, position: int, scheme: str) -> None:
        super().__init__(
            f"entry {position} ({scheme}://…) is not a URL Apprise can send to: unknown "
            "service or missing parts (see https://github.com/caronc/apprise/wiki)"
        )


class _SendFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Receiver:
    position: int
    scheme: str
    service: str
    plugin: Any  # an Apprise plugin: untyped upstream
    redactor: Redactor

    def delivery(self, *, sent: bool, attempts: int, reason: str = "") -> Delivery:
        return Delivery(self.position, self.service, self.scheme, sent, attempts, reason)


class _ThreadCapture(logging.Handler):
    """Keeps what Apprise says about a failure, for the thread that is sending only (several
    sends may run at once), so that the reason can be redacted and logged as one line: its
    warnings, and the network error it logs at DEBUG ("Socket Exception: … timed out")."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self._lines = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        lines: list[str] | None = getattr(self._lines, "value", None)
        if lines is None:
            return
        message = record.getMessage()
        if record.levelno >= logging.WARNING or message.startswith(_NETWORK_ERROR):
            lines.append(message.removeprefix(_NETWORK_ERROR).strip())

    def start(self) -> None:
        self._lines.value = []

    def stop(self) -> list[str]:
        lines: list[str] = getattr(self._lines, "value", None) or []
        self._lines.value = None
        return lines


def _quiet_libraries() -> None:
    """Apprise's lines name hosts and, at DEBUG, whole URLs with their tokens; urllib3's
    DEBUG lines name each request's path (a Gotify token, an ntfy topic). Apprise's go into
    ``notification_failed``'s reason, redacted, and nowhere else; urllib3's stop at INFO."""
    apprise_log = logging.getLogger(_APPRISE_LOGGER)
    apprise_log.propagate = False
    apprise_log.setLevel(logging.DEBUG)  # for the capture only: nothing propagates
    urllib3_log = logging.getLogger("urllib3")
    urllib3_log.setLevel(max(urllib3_log.getEffectiveLevel(), logging.INFO))


def _instantiate(url: str) -> Any:  # noqa: ANN401 (an Apprise plugin: untyped upstream)
    with warnings.catch_warnings():
        # Apprise's plugins import imghdr (deprecated since 3.11): theirs to mend, not the
        # operator's to read about at every start.
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        return apprise.Apprise.instantiate(url)


class AppriseSender:
    """Every receiver of NOTIFY_URLS, ready to send to."""

    def __init__(
        self,
        receivers: list[_Receiver],
        *,
        timeout: float = SEND_TIMEOUT_SECONDS,
        attempts: int = ATTEMPTS,
        backoff_seconds: float = BACKOFF_SECONDS,
    ) -> None:
        self._receivers = receivers
        self.timeout = timeout
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self._pool = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="notify")
        self._capture = _ThreadCapture()
        logging.getLogger(_APPRISE_LOGGER).addHandler(self._capture)

    @classmethod
    def build(
        cls,
        urls: list[str],
        *,
        timeout: float = SEND_TIMEOUT_SECONDS,
        attempts: int = ATTEMPTS,
        backoff_seconds: float = BACKOFF_SECONDS,
    ) -> AppriseSender:
        """A sender for ``urls``; ``UnusableNotifyUrl`` names the first Apprise refuses."""
        _quiet_libraries()
        receivers = []
        for position, url in enumerate(urls, start=1):
            plugin = _instantiate(url)
            if plugin is None:
                raise UnusableNotifyUrl(position, scheme_of(url))
            # The plugin's own socket timeouts end the thread soon after we stop waiting
            # (SMTP's default is 15 s); a little later than ours, so ours speaks first.
            limit = timeout * 1.5
            plugin.socket_connect_timeout = min(plugin.socket_connect_timeout or limit, limit)
            plugin.socket_read_timeout = min(plugin.socket_read_timeout or limit, limit)
            service = str(getattr(plugin, "service_name", "") or scheme_of(url))
            receivers.append(
                _Receiver(position, scheme_of(url), service, plugin, Redactor(secret_parts(url)))
            )
        return cls(receivers, timeout=timeout, attempts=attempts, backoff_seconds=backoff_seconds)

    @property
    def labels(self) -> list[str]:
        """Each receiver as pages name it (``#1 ntfy (ntfy://)``)."""
        return [r.delivery(sent=False, attempts=0).label for r in self._receivers]

    async def send(self, notice: Notice, *, retry: bool = True) -> list[Delivery]:
        """Send ``notice`` to every receiver at once; each is tried ``attempts`` times (once
        unless ``retry``). Never raises: each outcome is returned and logged."""
        return list(
            await asyncio.gather(*(self._deliver(r, notice, retry=retry) for r in self._receivers))
        )

    async def _deliver(self, receiver: _Receiver, notice: Notice, *, retry: bool) -> Delivery:
        attempts = self.attempts if retry else 1
        tried = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(attempts),
                wait=backoff(multiplier=self.backoff_seconds, max=30),
                retry=retry_if_exception_type(_SendFailed),
                reraise=False,
            ):
                with attempt:
                    tried = attempt.retry_state.attempt_number
                    try:
                        await self._attempt(receiver, notice)
                    except _SendFailed as exc:
                        log.warning(
                            "notification_failed",
                            receiver=receiver.position,
                            notifier=receiver.service,
                            scheme=receiver.scheme,
                            attempt=tried,
                            of=attempts,
                            reason=exc.reason,
                        )
                        raise
        except RetryError as exc:
            failure = exc.last_attempt.exception()
            reason = failure.reason if isinstance(failure, _SendFailed) else str(failure)
            log.error(  # noqa: TRY400 (the reason says it all; a traceback would not help)
                "notification_given_up",
                receiver=receiver.position,
                notifier=receiver.service,
                scheme=receiver.scheme,
                attempts=tried,
                title=notice.title,
                reason=reason,
            )
            return receiver.delivery(sent=False, attempts=tried, reason=reason)
        log.info(
            "notification_sent",
            receiver=receiver.position,
            notifier=receiver.service,
            scheme=receiver.scheme,
            attempts=tried,
            title=notice.title,
        )
        return receiver.delivery(sent=True, attempts=tried)

    async def _attempt(self, receiver: _Receiver, notice: Notice) -> None:
        loop = asyncio.get_running_loop()
        sending = loop.run_in_executor(self._pool, self._send_blocking, receiver, notice)
        try:
            # Shielded: a timeout stops the wait, not the thread (threads cannot be stopped);
            # the plugin's socket timeouts end it soon after.
            await asyncio.wait_for(asyncio.shield(sending), self.timeout)
        except TimeoutError:
            raise _SendFailed(f"no answer within {self.timeout:g} s") from None

    def _send_blocking(self, receiver: _Receiver, notice: Notice) -> None:
        self._capture.start()
        try:
            sent = receiver.plugin.notify(
                title=notice.title, body=notice.body, notify_type=notice.kind
            )
        except Exception as exc:  # noqa: BLE001 (a plugin's bug must end as a reason, not kill the send)
            sent = False
            logging.getLogger(_APPRISE_LOGGER).warning("%s: %s", type(exc).__name__, exc)
        finally:
            said = self._capture.stop()
        if not sent:
            reason = " ".join(said) or "the receiver refused the notice"
            raise _SendFailed(receiver.redactor.scrub_text(reason)[:_REASON_LENGTH])

    def close(self) -> None:
        """Let the sending threads go; a send still running finishes on its own."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        logging.getLogger(_APPRISE_LOGGER).removeHandler(self._capture)
