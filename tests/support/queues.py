"""The suite's Redis database for task queues, as a fixture: queue_redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.support.services import REDIS_URL


@pytest.fixture
def queue_redis() -> Iterator[str]:
    """The suite's Redis database for queues, emptied before and after each test: no task
    of another test is waiting there, and none of this one's is left behind."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()
