"""The worker's side: pool children record into multiprocess files, the main process folds
them into one snapshot (a child that was replaced keeps its counts, its files go), and the
web app reads a snapshot back only as well-formed families of Hearth's. Real forked
processes, no worker: the Celery wiring is proven by the end-to-end test."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.metrics import snapshot
from hearth.worker import metrics as worker_metrics

NODE = "hearth-abc123@host"


def _child_runs(count: int, outcome: str) -> None:
    """In a fresh process: what a pool child does for ``count`` tasks."""
    child = worker_metrics.ChildMetrics(NODE)
    for _ in range(count):
        child.tasks.labels("hearth.ping", outcome, NODE).inc()
        child.duration.labels("hearth.ping", NODE).observe(0.02)
    child.llm.record("embed", "ok", 0.3)


def _run_child(count: int, outcome: str = "succeeded") -> int:
    process = multiprocessing.get_context("fork").Process(target=_child_runs, args=(count, outcome))
    process.start()
    process.join(30)
    assert process.exitcode == 0
    assert process.pid is not None
    return process.pid


def _value(families: list[dict[str, object]], sample: str, **labels: str) -> float:
    for family in families:
        for name, found, value in family["samples"]:  # type: ignore[attr-defined]
            if name == sample and all(found.get(k) == v for k, v in labels.items()):
                return float(value)
    raise AssertionError(f"no {sample} {labels} in {json.dumps(families)}")


@pytest.fixture
def directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # read TMPDIR again
    made = worker_metrics.prepare_directory()
    yield made
    worker_metrics.remove_directory(made)
    assert not made.exists()


def test_the_counts_of_children_gone_are_kept_and_their_files_removed(directory: Path) -> None:
    assert os.environ[worker_metrics.MULTIPROC_ENV] == str(directory)
    first = _run_child(3)
    second = _run_child(2, "failed")
    assert {path.name for path in directory.iterdir()} == {
        f"counter_{first}.db",
        f"histogram_{first}.db",
        f"counter_{second}.db",
        f"histogram_{second}.db",
    }
    folder = worker_metrics.Folder(directory)
    families = folder.snapshot(live=[])
    assert _value(families, "hearth_tasks_total", outcome="succeeded", worker=NODE) == 3
    assert _value(families, "hearth_tasks_total", outcome="failed", worker=NODE) == 2
    assert _value(families, "hearth_task_duration_seconds_count", task="hearth.ping") == 5
    assert _value(families, "hearth_task_duration_seconds_bucket", le="0.05") == 5
    assert _value(families, "hearth_llm_calls_total", process=NODE, outcome="ok") == 2
    # The children are gone: their counts live on in the archive, their files do not.
    assert {path.name for path in directory.iterdir()} == {
        "counter_archive.db",
        "histogram_archive.db",
    }
    third = _run_child(1)
    again = folder.snapshot(live=[third])  # still "alive" for the pool: its file is kept
    assert _value(again, "hearth_tasks_total", outcome="succeeded", worker=NODE) == 4
    assert f"counter_{third}.db" in {path.name for path in directory.iterdir()}
    assert _value(folder.snapshot(live=[]), "hearth_task_duration_seconds_count") == 6


def test_directories_of_workers_no_longer_running_are_removed(
    directory: Path, tmp_path: Path
) -> None:
    dead = _run_child(0)  # a pid that no longer runs
    left = tmp_path / f"{worker_metrics.DIRECTORY_PREFIX}{dead}-x1y2"
    left.mkdir()
    (left / "counter_1.db").write_bytes(b"")
    alive = tmp_path / f"{worker_metrics.DIRECTORY_PREFIX}{os.getpid()}-z3"
    alive.mkdir()
    fresh = worker_metrics.prepare_directory()
    try:
        assert not left.exists()
        assert alive.exists()
        assert directory.exists()
        assert fresh != directory
    finally:
        worker_metrics.remove_directory(fresh)


def test_a_snapshot_is_read_back_only_as_hearths_families() -> None:
    good = {
        "name": "hearth_tasks",
        "type": "counter",
        "help": "Tasks run",
        "samples": [
            ["hearth_tasks_total", {"task": "hearth.ping", "outcome": "ok", "worker": NODE}, 2],
            ["hearth_tasks_total", {"task": 1}, 2],  # a label that is not text
            ["hearth_tasks_total", {"task": "x"}, float("nan")],
            ["other_total", {}, 1],  # not of this family
            ["hearth_tasks_total", {}, True],
            "junk",
        ],
    }
    foreign = {"name": "process_cpu_seconds", "type": "counter", "help": "", "samples": []}
    gauge = {"name": "hearth_tasks_x", "type": "gauge", "help": "", "samples": []}
    (family,) = snapshot.decode([good, foreign, gauge, "junk", None])
    assert family.name == "hearth_tasks"
    assert [(s.name, s.labels, s.value) for s in family.samples] == [
        ("hearth_tasks_total", {"task": "hearth.ping", "outcome": "ok", "worker": NODE}, 2.0)
    ]
    assert snapshot.decode({"not": "a list"}) == []
    assert snapshot.decode(None) == []
