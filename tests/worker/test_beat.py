"""The worker's beat thread: a start that fails (its result backend unreachable) is retried,
and stopping it never waits forever (Celery's own threaded beat would: a worker stopped with
its database away never exited)."""

from __future__ import annotations

import time

from celery import Celery
from structlog.testing import capture_logs

from hearth.worker.beat import BeatThread
from tests.support.services import free_port


def _unreachable_database_app() -> Celery:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/hearth"  # nothing listens
    app = Celery("beat-test", broker="memory://", backend=f"db+{url}")
    app.conf.beat_scheduler = "celery.beat:Scheduler"  # in memory, as Hearth's
    app.conf.database_engine_options = {"connect_args": {"connect_timeout": 1}}
    return app


def test_a_beat_that_cannot_start_retries_and_stops_within_its_bound() -> None:
    beat = BeatThread(_unreachable_database_app())
    with capture_logs() as logs:
        beat.start()
        deadline = time.monotonic() + 60
        while not any(e["event"] == "beat_failed" for e in logs) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert beat.is_alive()  # failed once, waiting to try again: not dead, not hung
        beat.stop()
    [failed, *_] = [e for e in logs if e["event"] == "beat_failed"]
    assert "127.0.0.1" in failed["reason"] or "connect" in failed["reason"], failed
    assert not beat.is_alive()  # stopped, where it used to wait for its own end forever
