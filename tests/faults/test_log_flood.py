"""A dependency that stays down is logged, not flooded: real `hearth worker` and `hearth serve`
processes with their broker gone write a few lines of each kind and then a count of the rest
(``log_repeats_suppressed``), with the default limit (5 a minute per kind of line)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from hearth.log.repeats import DEFAULT_LIMIT, SUMMARY_EVENT
from tests.support.process import HEARTH, clean_environment, hearth_server
from tests.support.services import free_port
from tests.support.tokens import bearer
from tests.support.worker import OwnedRedis

DOWN_FOR_S = 20.0  # how long each process runs with its dependency gone
# Every line a process writes in its first minute: at most DEFAULT_LIMIT of each kind, one
# summary per kind, and the start-up lines. Without the limit the worker writes ~25 a second.
LINES_PER_MINUTE = 60


def _log_lines(output: Path) -> list[dict[str, Any]]:
    """The JSON lines of a process's output (Celery prints "worker: Warm shutdown" plainly)."""
    lines = []
    for text in output.read_text().splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return lines


def _limited(line: dict[str, Any]) -> bool:
    """Whether the limit applies to a line: all but the summaries and Hearth's own events
    below WARNING (``request_finished``, ``health_check``: one line per thing done)."""
    if line["event"] == SUMMARY_EVENT:
        return False
    return not (line["logger"].startswith("hearth.") and line["level"] in {"debug", "info"})


def _assert_bounded(lines: list[dict[str, Any]]) -> int:
    """Each kind of line at most DEFAULT_LIMIT times, the total within the bound, and a
    count of what was held back; returns that count."""
    written = [line for line in lines if _limited(line)]
    kinds = Counter((line["logger"], line["event"]) for line in written)
    repeated = {kind: count for kind, count in kinds.items() if count > DEFAULT_LIMIT}
    assert not repeated, f"written more than {DEFAULT_LIMIT} times: {repeated}"
    assert len(written) <= LINES_PER_MINUTE, f"{len(written)} lines: {kinds}"
    summaries = [line for line in lines if line["event"] == SUMMARY_EVENT]
    suppressed = sum(int(summary["suppressed"]) for summary in summaries)
    assert suppressed > 0, f"no {SUMMARY_EVENT} line: {kinds}"
    for summary in summaries:
        assert summary["repeated_logger"]
        assert summary["repeated_event"]
    return suppressed


@pytest.mark.worker
def test_a_worker_whose_broker_is_down_logs_a_bounded_number_of_lines(tmp_path: Path) -> None:
    """The broker is PostgreSQL (no REDIS_URL, as in the embedded mode) on a port nothing
    listens on: Celery's consumer restarts and logs its connection errors several times a
    second (issue 11: ~1 GB a day). Redis's reconnect backs off by itself (every 30 s)."""
    nobody = free_port()
    env = clean_environment(DATABASE_URL=f"postgresql://hearth@127.0.0.1:{nobody}/hearth")
    output = tmp_path / "worker.log"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [HEARTH, "worker", "--concurrency", "1"],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + DOWN_FOR_S
        while time.monotonic() < deadline:
            assert process.poll() is None, output.read_text()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)  # what is held back is summed up at exit
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    lines = _log_lines(output)
    suppressed = _assert_bounded(lines)
    assert suppressed > 10 * DEFAULT_LIMIT  # the flood was there: it was counted, not written
    celery = [s for s in lines if s["event"] == SUMMARY_EVENT and "celery" in s["repeated_logger"]]
    assert celery, "Celery's own connection errors were not limited"


def _post_tasks(url: str, token: str, until: float, answers: Counter[int]) -> None:
    """Post tasks and read /health until ``until``; count the answers to the posts."""
    with httpx.Client(base_url=url, headers=bearer(token), timeout=10) as client:
        while time.monotonic() < until:
            answers[client.post("/tasks/ping").status_code] += 1
            assert client.get("/health").status_code == 200


@pytest.mark.worker
def test_a_server_whose_redis_is_gone_logs_a_bounded_number_of_lines(
    database_url: str, api_token: str, tmp_path: Path
) -> None:
    """Redis stops under a request loop: every task posted is refused (503) and logged;
    only the first few refusals are written, the rest counted."""
    redis = OwnedRedis(free_port(), tmp_path / "redis")
    redis.start()
    port = free_port()
    env = clean_environment(DATABASE_URL=database_url, REDIS_URL=redis.url)
    answers: Counter[int] = Counter()
    try:
        with hearth_server(env, tmp_path, port) as server:
            server.wait_until("/readyz")
            redis.stop()
            until = time.monotonic() + DOWN_FOR_S
            clients = [
                threading.Thread(target=_post_tasks, args=(server.url, api_token, until, answers))
                for _ in range(6)
            ]
            for client in clients:
                client.start()
            for client in clients:
                client.join()
            assert server.stop() == 0
            lines = server.logs()
    finally:
        redis.stop()
    assert answers[503] > 3 * DEFAULT_LIMIT, answers  # enough refusals to flood
    posted = [
        line
        for line in lines
        if line["event"] == "request_finished" and line["path"] == "/tasks/ping"
    ]
    assert len(posted) == answers.total()  # never limited: one line per request
    _assert_bounded(lines)
