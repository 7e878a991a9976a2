"""The web app's monitor loop: it checks on its own, outlives a failing round, and stops
when told (cancelled at shutdown), without waiting for its next round."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest

from hearth.health.monitor import check_every
from hearth.health.service import HealthService
from hearth.kit.checks import CheckResult


class FailingFirst(HealthService):
    """Health checks whose first round fails as a bug would (checks themselves never raise:
    HealthService turns their errors into results)."""

    rounds = 0

    async def run(self, names: Iterable[str] | None = None) -> dict[str, CheckResult]:
        self.rounds += 1
        if self.rounds == 1:
            message = "a bug in the first round"
            raise RuntimeError(message)
        return await super().run(names)


async def test_the_monitor_outlives_a_failing_round_and_stops_when_cancelled() -> None:
    seen: list[str] = []

    async def check() -> CheckResult:
        return CheckResult(status="ok")

    health = FailingFirst(version="test", cache_seconds=0)
    health.register("thing", check, critical=False, timeout=1)
    health.on_change(lambda name, _previous, result, _at: seen.append(f"{name} {result.status}"))
    monitor = asyncio.create_task(check_every(health, 0.01))
    for _ in range(500):
        if health.rounds >= 3:
            break
        await asyncio.sleep(0.01)
    assert health.rounds >= 3
    assert seen == ["thing ok"]  # checked on its own; one change, however many rounds
    monitor.cancel()
    with pytest.raises(asyncio.CancelledError):
        await monitor
    await health.close()
