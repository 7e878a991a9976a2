"""The garbage collector while `hearth serve` and `hearth worker` start (hearth.kit.collector).

Each command runs in a fresh interpreter, for real, on the suite's database (and Redis for
the worker). Every automatic collection is recorded with how many objects were frozen when
it began: one before the start-up's objects are set aside would be a collection walking the
imports, which start-up is spared.
"""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import pytest

from hearth import cli
from hearth.kit import collector
from hearth.kit.urls import normalize_database_url
from hearth.worker.run import wait_for_schema
from tests.support.process import clean_environment, printed_json, run_hearth
from tests.support.services import free_port

# At least this many objects set aside once a process has started (about 190 000 for
# `hearth serve`): the modules and the app, not a handful.
FROZEN_AT_LEAST = 50_000

# Run in the child. A thread waits, allocating nothing the collector counts, until the
# command has frozen its start-up's objects; then (for the server, once /readyz answers 200)
# prints what the collector did and stops the command with SIGTERM.
PROBE = """
import gc, json, os, signal, sys, threading, time, urllib.request

from hearth import cli

port, command = sys.argv[1], sys.argv[2]
collections = []  # the number of frozen objects when each automatic collection began
gc.collect()  # what importing this probe left: before the count starts
gc.callbacks.append(
    lambda phase, info: collections.append(gc.get_freeze_count()) if phase == "start" else None
)

def watch():
    while not gc.get_freeze_count():
        time.sleep(0.005)
    while command == "serve":
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.05)
    state = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count(), "seen": collections}
    print("STATE " + json.dumps(state), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=watch, daemon=True).start()
argv = ["serve", "--port", port] if command == "serve" else ["worker", "--concurrency", "1"]
sys.exit(cli.main(argv))
"""


def _started(command: str, tmp_path: Path, **env: str) -> dict[str, object]:
    state: dict[str, object] = printed_json(
        PROBE, tmp_path, "STATE", str(free_port()), command, **env
    )
    return state


def _held(state: dict[str, object]) -> None:
    assert state["enabled"] is True  # collecting again once started
    assert isinstance(state["frozen"], int)
    assert state["frozen"] >= FROZEN_AT_LEAST
    seen = state["seen"]
    assert isinstance(seen, list)
    assert [frozen for frozen in seen if frozen == 0] == []  # none walked the imports


def test_serve_starts_without_collecting_and_sets_its_start_up_aside(
    tmp_path: Path, database_url: str
) -> None:
    _held(_started("serve", tmp_path, DATABASE_URL=database_url, LOG_LEVEL="WARNING"))


@pytest.mark.worker
def test_the_worker_starts_without_collecting_and_sets_its_start_up_aside(
    tmp_path: Path, database_url: str, queue_redis: str
) -> None:
    state = _started(
        "worker", tmp_path, DATABASE_URL=database_url, REDIS_URL=queue_redis, LOG_LEVEL="WARNING"
    )
    _held(state)


def test_the_probe_sees_collections_when_nothing_pauses_them(tmp_path: Path) -> None:
    """The recording above works: importing the web stack with the collector on shows
    collections made while nothing was frozen."""
    code = """
        import gc
        seen = []
        def record(phase, info):
            if phase == "start":
                seen.append(gc.get_freeze_count())
        gc.callbacks.append(record)
        import hearth.app.server
        print("SEEN " + json.dumps(seen))
    """
    assert 0 in printed_json(code, tmp_path, "SEEN")


def test_every_other_command_collects_as_usual() -> None:
    """Only `serve` and `worker` start with the collector paused; a short command, or a bad
    argument that makes argparse exit, leaves it on."""
    with pytest.raises(SystemExit):
        cli.main(["--no-such-option"])
    assert gc.isenabled()
    assert cli.main(["version"]) == 0
    assert gc.isenabled()


def test_a_worker_waiting_for_the_migrations_collects_meanwhile(
    fresh_database: str, tmp_path: Path
) -> None:
    """The wait may last hours, each look leaving an engine's cycles behind: the collector
    is back on while it waits (and the wait ends once `hearth migrate` has run)."""
    seen_on: list[bool] = []

    def watch_then_migrate() -> None:
        deadline = time.monotonic() + 30
        while not gc.isenabled() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen_on.append(gc.isenabled())
        done = run_hearth(
            "migrate", env=clean_environment(DATABASE_URL=fresh_database), cwd=tmp_path
        )
        assert done.returncode == 0, done.stdout + done.stderr

    helper = threading.Thread(target=watch_then_migrate)
    collector.pause()  # as `hearth worker` starts
    try:
        helper.start()
        wait_for_schema(normalize_database_url(fresh_database), poll_seconds=0.05)
    finally:
        gc.enable()
        helper.join(timeout=120)
    assert seen_on == [True]
