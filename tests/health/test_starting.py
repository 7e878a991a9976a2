"""``starting``, a component on its way up (the worker `hearth serve` just started): not a
failure for the overall status, not up for Prometheus, and not a change for the history."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hearth.health.history import HealthHistory
from hearth.health.service import ComponentState, HealthService
from hearth.kit.checks import CheckResult, CheckStatus
from hearth.metrics.collectors import Scrape, families


def _result(status: CheckStatus) -> CheckResult:
    return CheckResult(status=status)


class Switch:
    """A component whose status the test sets; its check says so."""

    def __init__(self) -> None:
        self.status: CheckStatus = "ok"

    async def check(self) -> CheckResult:
        return _result(self.status)


@pytest.mark.parametrize(
    ("worker", "overall"),
    [("starting", "ok"), ("ok", "ok"), ("unreachable", "degraded")],
)
def test_a_starting_component_degrades_nothing(worker: CheckStatus, overall: str) -> None:
    health = HealthService(version="test")
    health.register("db", Switch().check, critical=True, timeout=1)
    health.register("worker", Switch().check, critical=False, timeout=1)
    results = {"db": _result("ok"), "worker": _result(worker)}
    assert health.overall(results) == overall


def test_a_starting_component_is_not_up_yet_for_prometheus() -> None:
    statuses: dict[str, CheckStatus] = {"db": "ok", "worker": "starting", "mail": "unconfigured"}
    states = {
        name: ComponentState(_result(status), checked_at=1.0, changed_at=1.0)
        for name, status in statuses.items()
    }
    [up] = [
        family
        for family in families(Scrape(components=states))
        if family.name == "hearth_component_up"
    ]
    assert {sample.labels["component"]: sample.value for sample in up.samples} == {
        "db": 1.0,
        "worker": 0.0,
    }


async def test_a_start_is_stored_as_the_status_it_ends_in(
    engine: AsyncEngine, database_url: str
) -> None:
    """A restart (ok, starting, ok) adds no row, so no notice; a start that fails is stored
    as unreachable, as any outage is."""
    name = f"worker-{uuid.uuid4().hex[:8]}"
    switch = Switch()
    history = HealthHistory(async_sessionmaker(engine))
    health = HealthService(version="test", cache_seconds=0)
    health.register(name, switch.check, critical=False, timeout=1)
    health.on_change(history.record)
    sequence: list[CheckStatus] = ["ok", "starting", "ok", "starting", "unreachable"]
    for status in sequence:
        switch.status = status
        await health.run()
    assert await history.flush() == 0
    with psycopg.connect(database_url) as connection:
        stored = connection.execute(
            "SELECT status FROM health_events WHERE component = %s ORDER BY changed_at, id",
            (name,),
        ).fetchall()
    assert [row[0] for row in stored] == ["ok", "unreachable"]
