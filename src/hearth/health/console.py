"""The live console's view of health: the table, the overall status and the LLM banner drawn
from one set of results, with the time the oldest of them was checked, so a page never
contradicts itself nor claims a freshness it lacks."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hearth.health.schemas import ComponentHealth, HealthReport

if TYPE_CHECKING:
    from hearth.health.service import ComponentState, HealthService
    from hearth.kit.checks import CheckResult


@dataclass(frozen=True)
class Snapshot:
    """Every check as shown on a page, the overall status, and when the oldest result shown
    was checked (wall-clock seconds; of the configured components), as of ``taken_at``."""

    report: HealthReport
    checked_at: float
    taken_at: float

    @property
    def llm(self) -> ComponentHealth | None:
        """The LLM's result, which draws the banner (None if no LLM check is registered)."""
        return self.report.checks.get("llm")

    @property
    def age_seconds(self) -> int:
        """Whole seconds between the oldest check shown and the snapshot."""
        return max(0, int(self.taken_at - self.checked_at))

    @property
    def age_text(self) -> str:
        """The age for people: ``4 s ago``, ``3 min ago``, ``2 h ago``."""
        age = self.age_seconds
        if age < 60:  # noqa: PLR2004 (a minute)
            return f"{age} s ago"
        if age < 3600:  # noqa: PLR2004 (an hour)
            return f"{age // 60} min ago"
        return f"{age // 3600} h ago"

    @property
    def checked_iso(self) -> str:
        """When the oldest check shown ran, in ISO 8601 (UTC), for ``<time datetime>``."""
        return datetime.fromtimestamp(self.checked_at, UTC).isoformat(timespec="seconds")

    @property
    def checked_text(self) -> str:
        """The same time for people (UTC), for the element's title."""
        return datetime.fromtimestamp(self.checked_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    @property
    def banner_key(self) -> str:
        """What the LLM banner shows, as a short digest (see ``banner_key``)."""
        return banner_key(self.llm)


def banner_key(llm: ComponentHealth | None) -> str:
    """A short digest of what the LLM banner shows, which the page sends back with each
    refresh: an unchanged banner is left alone, so a screen reader does not announce it
    again. The digest of a detail the caller already reads; ``none`` without a banner."""
    if llm is None or llm.status != "unreachable":
        return "none"
    return "llm-" + hashlib.sha256((llm.detail or "").encode()).hexdigest()[:16]


async def current(health: HealthService, *, details: bool) -> Snapshot:
    """Results as ``/health`` gives them: fresh ones, waited for within the budget."""
    return await _taken(health, health.run(), details=details)


async def last_known(health: HealthService, *, details: bool) -> Snapshot:
    """The last results without waiting (stale ones are refreshed in the background, for the
    page's first refresh to find); waits only for a component never checked yet."""
    names = health.names

    async def latest() -> dict[str, CheckResult]:
        found = await asyncio.gather(*(health.latest(name) for name in names))
        return dict(zip(names, found, strict=True))

    return await _taken(health, latest(), details=details)


async def _taken(
    health: HealthService, pending: Awaitable[dict[str, CheckResult]], *, details: bool
) -> Snapshot:
    started, before = time.time(), health.states()
    results = await pending
    after, now = health.states(), time.time()
    seen = (after, before)
    # "Unconfigured" is read from the settings, not found by asking anything, so it does not
    # grow stale (the mail check's is kept a minute): the age is that of the real checks.
    asked = {n: r for n, r in results.items() if r.status != "unconfigured"} or results
    checked = [_checked_at(name, result, seen, started) for name, result in asked.items()]
    report = HealthReport(
        status=health.overall(results),
        version=health.version,
        checks={name: ComponentHealth.of(r, details=details) for name, r in results.items()},
    )
    return Snapshot(report=report, checked_at=min(checked, default=now), taken_at=now)


def _checked_at(
    name: str,
    result: CheckResult,
    states: tuple[dict[str, ComponentState], ...],
    started: float,
) -> float:
    # The service hands out the very result it stores, beside the time it was checked. A
    # result in neither look (made while we waited and replaced since, or made up because
    # no answer came within the budget) is no older than the start of this call: claiming
    # that start errs towards older, never towards fresher.
    for seen in states:
        state = seen.get(name)
        if state is not None and state.result is result:
            return state.checked_at
    return started
