"""The web app sends tasks and reads their state by id: it never waits on a result, so it
must not subscribe to results either (each subscription it never read stayed in its memory
and in Redis's, one per task sent, found by the soak in bench/soak.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.support.app import ClientFor
from tests.support.services import free_port
from tests.support.tokens import bearer
from tests.support.worker import OwnedRedis

pytestmark = pytest.mark.redis

SENDS = 200


async def test_the_web_app_subscribes_to_no_result_while_sending_tasks(
    client_for: ClientFor, api_token: str, tmp_path: Path
) -> None:
    """SENDS pings through the API, on a Redis of the test's own (so no other client's
    commands count): Redis saw no SUBSCRIBE, and each task's state still reads by id."""
    owned = OwnedRedis(free_port(), tmp_path / "redis")
    owned.start()
    try:
        async with client_for(redis_url=owned.url) as client:
            client.headers.update(bearer(api_token))
            ids = []
            for _ in range(SENDS):
                response = await client.post("/tasks/ping")
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])
            state = await client.get(f"/tasks/{ids[-1]}")
            stats = redis.Redis.from_url(owned.url).info("commandstats")
    finally:
        owned.stop()
    assert state.status_code == 200, state.text
    assert state.json()["state"] == "PENDING"  # no worker: queued, not run
    assert stats.get("cmdstat_lpush", {}).get("calls") == SENDS  # the sends reached Redis
    assert "cmdstat_subscribe" not in stats, stats.get("cmdstat_subscribe")
