"""Run the registered health checks concurrently, briefly cached and shared between callers.

A storm of probes costs one check per component per cache period: callers that arrive
while a check is running wait for that same run instead of starting another.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from hearth.health.schemas import ComponentHealth, HealthReport, OverallStatus
from hearth.kit.checks import CheckResult
from hearth.kit.urls import mask_urls
from hearth.log import get_logger

log = get_logger(__name__)

Check = Callable[[], Awaitable[CheckResult]]
# Told of each change of a component's status: (name, previous result or None, new result,
# wall-clock time of the change). Called in the event loop; must not block or raise.
ChangeListener = Callable[[str, CheckResult | None, CheckResult, float], None]


@dataclass(frozen=True)
class ComponentState:
    """A component as last checked: its result, and when (wall-clock seconds) it was
    checked and when its status last changed (in this process)."""

    result: CheckResult
    checked_at: float
    changed_at: float


@dataclass
class _Registered:
    name: str
    check: Check
    critical: bool
    timeout: float
    cache_seconds: float
    result: CheckResult | None = None
    finished_at: float = 0.0
    checked_at: float = 0.0  # wall clock, for people; finished_at is monotonic, for the cache
    changed_at: float = 0.0
    running: asyncio.Task[CheckResult] | None = field(default=None, repr=False)


class HealthService:
    """A registry of named checks and the logic that turns their results into a status."""

    def __init__(self, *, version: str, budget: float = 2.0, cache_seconds: float = 2.0) -> None:
        self.version = version
        self.budget = budget
        self.cache_seconds = cache_seconds
        self._checks: dict[str, _Registered] = {}
        self._listeners: list[ChangeListener] = []

    def register(
        self,
        name: str,
        check: Check,
        *,
        critical: bool,
        timeout: float,
        cache_seconds: float | None = None,
    ) -> None:
        """Add a check. ``timeout`` bounds it; a critical one failing makes the status
        ``down``; ``cache_seconds`` overrides how long its result is reused."""
        cache = self.cache_seconds if cache_seconds is None else cache_seconds
        self._checks[name] = _Registered(name, check, critical, min(timeout, self.budget), cache)

    def on_change(self, listener: ChangeListener) -> None:
        """Have ``listener`` told of every change of a component's status from now on (the
        first result of each component counts as a change from None)."""
        self._listeners.append(listener)

    def states(self) -> dict[str, ComponentState]:
        """Each component's last result and when it was checked and changed, without running
        a check; components not yet checked are left out."""
        return {
            name: ComponentState(entry.result, entry.checked_at, entry.changed_at)
            for name, entry in self._checks.items()
            if entry.result is not None
        }

    @property
    def names(self) -> list[str]:
        """Every registered check's name, in the order registered."""
        return list(self._checks)

    @property
    def critical_names(self) -> list[str]:
        """The checks whose failure makes the status ``down``."""
        return [name for name, entry in self._checks.items() if entry.critical]

    async def run(self, names: Iterable[str] | None = None) -> dict[str, CheckResult]:
        """Results of the named checks (all by default), within the time budget."""
        entries = [self._checks[name] for name in (names or self._checks)]
        tasks = {entry.name: self._result_task(entry) for entry in entries}
        pending = [task for task in tasks.values() if not task.done()]
        if pending:
            # asyncio.wait never cancels: a slow check keeps running for the next caller.
            await asyncio.wait(pending, timeout=self.budget)
        return {name: self._result_of(task) for name, task in tasks.items()}

    async def report(self, *, details: bool = True) -> HealthReport:
        """Every check, with the overall status the health contract defines; each check's
        detail left out (null) unless ``details``."""
        results = await self.run()
        checks = {name: ComponentHealth.of(r, details=details) for name, r in results.items()}
        return HealthReport(status=self.overall(results), version=self.version, checks=checks)

    async def latest(self, name: str) -> CheckResult:
        """The last result without waiting for a new one (a stale one is refreshed in the
        background); waits, within the budget, only when there is no result yet. For pages,
        which must not stall on a slow LLM to draw a banner."""
        entry = self._checks[name]
        if entry.result is None:
            return (await self.run([name]))[name]
        self._result_task(entry)
        return entry.result

    async def check_now(self, name: str, *, within: float | None = None) -> CheckResult:
        """Run ``name`` now, ignoring the cache (joining a run already under way). An
        explicit ``within`` (a connection test's budget, longer than a probe's) runs a check
        of its own, given that long."""
        entry = self._checks[name]
        if within is not None:
            return await self._execute(entry, within)
        if entry.running is None or entry.running.done():
            entry.running = asyncio.create_task(self._execute(entry), name=f"health:{name}")
        # Shielded: a caller that gives up must not cancel a run other callers share.
        return await asyncio.shield(entry.running)

    def invalidate(self, name: str) -> None:
        """Forget the cached result of ``name``: its settings just changed."""
        self._checks[name].finished_at = 0.0

    async def close(self) -> None:
        """Cancel the checks still running, before the clients they use are closed."""
        running = [e.running for e in self._checks.values() if e.running and not e.running.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def overall(self, results: dict[str, CheckResult]) -> OverallStatus:
        """``down`` if a critical check is unreachable, ``degraded`` if an optional one is.
        ``starting`` counts as ``ok``: during a normal start nothing is wrong yet, and a
        component that outlasts its start window turns ``unreachable``."""
        failing = [name for name, result in results.items() if result.status == "unreachable"]
        if any(self._checks[name].critical for name in failing):
            return "down"
        return "degraded" if failing else "ok"

    def _result_task(self, entry: _Registered) -> asyncio.Future[CheckResult]:
        fresh = time.monotonic() - entry.finished_at < entry.cache_seconds
        if entry.result is not None and fresh:
            done: asyncio.Future[CheckResult] = asyncio.get_running_loop().create_future()
            done.set_result(entry.result)
            return done
        if entry.running is None or entry.running.done():
            entry.running = asyncio.create_task(self._execute(entry), name=f"health:{entry.name}")
        return entry.running

    def _result_of(self, task: asyncio.Future[CheckResult]) -> CheckResult:
        if task.cancelled():
            return CheckResult(status="unreachable", detail="check cancelled: shutting down")
        if task.done():
            return task.result()
        return CheckResult(
            status="unreachable",
            detail=f"no answer within the {self.budget:g} s health budget",
            latency_ms=self.budget * 1000,
        )

    async def _execute(self, entry: _Registered, within: float | None = None) -> CheckResult:
        started = time.perf_counter()
        limit = entry.timeout if within is None else within
        try:
            result = await asyncio.wait_for(entry.check(), timeout=limit)
        except TimeoutError:
            result = CheckResult.timed("unreachable", f"no answer within {limit:g} s", started)
        except Exception as exc:  # a check must report, never raise
            log.warning("health_check_error", service=entry.name, exc_info=True)
            detail = mask_urls(f"{type(exc).__name__}: {exc}")
            result = CheckResult.timed("unreachable", detail, started)
        self._log(entry, result)
        previous, now = entry.result, time.time()
        entry.result, entry.finished_at, entry.checked_at = result, time.monotonic(), now
        if previous is None or previous.status != result.status:
            entry.changed_at = now
            for listener in self._listeners:
                listener(entry.name, previous, result, now)
        return result

    @staticmethod
    def _log(entry: _Registered, result: CheckResult) -> None:
        # INFO when a component changes state, DEBUG for repeats: probes run every few
        # seconds and an operator wants the changes, not thousands of identical lines.
        changed = entry.result is None or entry.result.status != result.status
        emit = log.info if changed else log.debug
        emit(
            "health_check",
            service=entry.name,
            status=result.status,
            detail=result.detail,
            latency_ms=result.latency_ms,
        )
