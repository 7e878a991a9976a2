"""Requests for an embedding run are merged into few sends (``MergedSends``), and each
request is still served by a send that begins after it: a run that began before a batch
was committed might not see it."""

from __future__ import annotations

import asyncio
import gc
import itertools
from pathlib import Path

import pytest
import redis

from hearth.worker.queue import MergedSends
from tests.support.app import ClientFor
from tests.support.services import free_port
from tests.support.tokens import bearer
from tests.support.worker import OwnedRedis

WINDOW = 3600.0  # longer than any test: only a flush ends it


class Recorder:
    """A send that takes until ``release`` is set, noting when each began and ended on one
    clock shared with the requests, and that two never overlap."""

    def __init__(self) -> None:
        self.clock = itertools.count()
        self.began: list[int] = []
        self.ended: list[int] = []
        self.release = asyncio.Event()
        self.release.set()
        self.sending = False

    async def send(self) -> None:
        assert not self.sending, "two sends under way at once"
        self.sending = True
        self.began.append(next(self.clock))
        await self.release.wait()
        self.ended.append(next(self.clock))
        self.sending = False


async def settle() -> None:
    """Let every task that can run, run."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_request_in_a_quiet_moment_is_sent_at_once() -> None:
    recorder = Recorder()
    merged = MergedSends(recorder.send, WINDOW)
    merged.request()
    await settle()
    assert len(recorder.ended) == 1  # without a flush, so the window did not hold it back


async def test_requests_within_the_window_share_one_send_after_them() -> None:
    recorder = Recorder()
    merged = MergedSends(recorder.send, WINDOW)
    recorder.release.clear()
    merged.request()  # sent at once, and held under way
    await settle()
    asked = []
    for _ in range(20):  # some while the first send is under way ...
        asked.append(next(recorder.clock))
        merged.request()
    recorder.release.set()
    await settle()
    for _ in range(20):  # ... some after it ended, within the window
        asked.append(next(recorder.clock))
        merged.request()
        await settle()
    assert len(recorder.began) == 1  # the second waits out the window
    await merged.flush()
    assert len(recorder.began) == 2  # 41 requests, two sends
    assert all(recorder.began[1] > moment for moment in asked)  # each served after it asked


async def test_a_request_during_a_send_that_began_before_it_gets_the_next() -> None:
    recorder = Recorder()
    merged = MergedSends(recorder.send, 0.0)
    recorder.release.clear()
    merged.request()
    await settle()
    asked = next(recorder.clock)
    merged.request()  # the first send began before this request: it cannot serve it
    await settle()
    assert len(recorder.began) == 1  # one at a time
    recorder.release.set()
    await merged.flush()
    assert len(recorder.began) == 2
    assert recorder.began[1] > asked


async def test_a_flush_sends_what_waits_and_nothing_when_nothing_was_asked() -> None:
    recorder = Recorder()
    merged = MergedSends(recorder.send, WINDOW)
    await merged.flush()
    assert recorder.began == []
    merged.request()
    merged.request()
    await merged.flush()
    assert len(recorder.ended) == 1


async def test_a_send_that_fails_is_handled_and_the_next_request_is_sent() -> None:
    """No request waits to hear of a send's failure, so the send handles it (logs it)
    rather than leave asyncio an exception nobody retrieved; the sends go on."""
    calls = 0

    async def send() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the broker client is misconfigured")

    unhandled: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    try:
        merged = MergedSends(send, 0.0)
        merged.request()
        await merged.flush()
        merged.request()
        await merged.flush()
        del merged
        gc.collect()  # a task whose exception was never retrieved says so when collected
    finally:
        loop.set_exception_handler(None)
    assert calls == 2
    assert unhandled == []


@pytest.mark.redis
async def test_batches_added_at_once_send_few_embedding_runs(
    client_for: ClientFor, api_token: str, tmp_path: Path
) -> None:
    """BATCHES batches through the API at once, on a Redis of the test's own: every batch
    stored, far fewer runs sent than batches, and none left unsent when the app stops."""
    batches = 40
    owned = OwnedRedis(free_port(), tmp_path / "redis")
    owned.start()
    try:
        async with client_for(redis_url=owned.url) as client:
            client.headers.update(bearer(api_token))
            body = {"documents": [{"text": "A boiler that will not light."}] * 5}
            answers = await asyncio.gather(
                *(client.post("/documents/batch", json=body) for _ in range(batches))
            )
        stats = redis.Redis.from_url(owned.url).info("commandstats")
    finally:
        owned.stop()
    assert [answer.status_code for answer in answers] == [202] * batches
    sends = stats.get("cmdstat_lpush", {}).get("calls", 0)
    assert 1 <= sends < batches / 2, sends
