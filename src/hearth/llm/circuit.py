"""A circuit breaker in front of the LLM, fed by its health check: while the last check got
no answer from the server, calls are refused at once (503 with the check's reason) instead
of each waiting out the call's own timeout (a minute for an embedding), and the check is run
again in the background, so the calls after the server returns find it back.

Only silence opens it: a server that refuses (connection refused, HTTP 401, a model it does
not have) fails each call fast by itself, with that call's own reason."""

from __future__ import annotations

import asyncio
import contextlib
import time

from hearth.kit.checks import CheckResult
from hearth.llm.adapter import ChatMessage, LLMAdapter, LLMUnavailable
from hearth.llm.http import CHECK_TIMEOUT_SECONDS
from hearth.log import get_logger

log = get_logger(__name__)

# A refused call starts a new check when the last one is older than this: about the health
# cache's period, so a stream of calls costs the server one probe every few seconds.
PROBE_AFTER_SECONDS = 2.0
# A probe that outlasts the check's own timeout is given up (its result was recorded).
_PROBE_LIMIT_SECONDS = CHECK_TIMEOUT_SECONDS + 1.0


class CircuitOpen(LLMUnavailable):
    """A call refused at once: the last check found the server silent."""


class Circuit(LLMAdapter):
    """``adapter``, refused at once while its last check got no answer in time. The check is
    the adapter's own (the health check ``llm`` runs it through here): a check that ran out
    its timeout, or was cancelled for running out of the health service's, opens it; any
    other result closes it."""

    def __init__(self, adapter: LLMAdapter) -> None:
        self.adapter = adapter
        self._down: CheckResult | None = None  # the check that found the server unreachable
        self._checked_at = 0.0
        self._probe: asyncio.Task[None] | None = None

    @property
    def open(self) -> bool:
        """Whether calls are refused now: the last check got no answer from the server."""
        return self._down is not None

    async def check(self) -> CheckResult:
        """The adapter's check; its result opens or closes the circuit."""
        started = time.monotonic()
        try:
            result = await self.adapter.check()
        except asyncio.CancelledError:
            # The health service gave up on it (its timeout), or the process is stopping.
            self._record(CheckResult(status="unreachable", detail="no answer to the check"))
            raise
        silent = time.monotonic() - started >= CHECK_TIMEOUT_SECONDS
        self._record(result, silent=silent and result.status == "unreachable")
        return result

    async def chat(self, messages: list[ChatMessage], *, model: str) -> str:
        """The adapter's reply; ``LLMUnavailable`` at once while the circuit is open."""
        self._refuse_if_open()
        return await self.adapter.chat(messages, model=model)

    async def embed(self, texts: list[str], *, model: str) -> list[list[float]]:
        """The adapter's vectors; ``LLMUnavailable`` at once while the circuit is open."""
        self._refuse_if_open()
        return await self.adapter.embed(texts, model=model)

    def _refuse_if_open(self) -> None:
        down = self._down
        if down is None:
            return
        stale = time.monotonic() - self._checked_at >= PROBE_AFTER_SECONDS
        if stale and (self._probe is None or self._probe.done()):
            self._probe = asyncio.create_task(self._probe_again(), name="llm-circuit-probe")
        raise CircuitOpen(
            f"The LLM server does not answer ({down.detail}); it is checked again in the"
            " background, try again shortly"
        )

    async def _probe_again(self) -> None:
        with contextlib.suppress(TimeoutError):  # recorded as unreachable by check()
            await asyncio.wait_for(self.check(), _PROBE_LIMIT_SECONDS)

    def _record(self, result: CheckResult, *, silent: bool = True) -> None:
        self._checked_at = time.monotonic()
        was_open = self.open
        self._down = result if silent else None
        if self.open and not was_open:
            log.warning("llm_circuit_opened", detail=result.detail)
        elif was_open and not self.open:
            log.info("llm_circuit_closed", status=result.status)
