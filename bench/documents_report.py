"""The documents benchmark's report, and where each phase's CPU went (which process kind
used how much of the machine's cores: where the limit is on a small machine)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench import documents_corpus
from bench.common import Processes, met
from bench.documents_ingest import UPDATE_BATCH, Ingested
from bench.documents_pipeline import Pipeline
from bench.documents_search import Search, p50, p95

TARGET_INGEST = 0.5
TARGET_PIPELINE = 0.5
TARGET_SEARCH_P95 = 1.5
TARGET_RECALL = 0.95
FLAT_MB_PER_10K = 1.0  # RSS growth per 10 000 documents that still reads as flat


@dataclass
class Round:
    scale: int  # api processes and workers
    ingested: Ingested
    ingest_cpu: dict[str, float]
    pipeline: Pipeline
    pipeline_cpu: dict[str, float]
    stored: int
    embedded: int
    embedded_twice: int
    never_asked: int
    embedding_requests: int
    search: Search | None


# --- CPU -------------------------------------------------------------------------------


@dataclass
class CpuMeter:
    """CPU seconds by kind of process (postgres, serve, worker, bench) over a phase, as
    cores used: sampled every second, so processes stopped within the phase still count."""

    started: float = field(default_factory=time.perf_counter)
    first: dict[tuple[int, float], float] = field(default_factory=dict)
    last: dict[tuple[int, float], tuple[str, float]] = field(default_factory=dict)
    result: dict[str, float] = field(default_factory=dict)


def _kind(processes: Processes, pid: int) -> str:
    path = processes.logs.get(pid)
    return path.name.split("-")[0].rstrip("0123456789") if path else "other"


def _cpu(process: psutil.Process, *, reaped: bool) -> float:
    times = process.cpu_times()
    own = times.user + times.system
    return own + (times.children_user + times.children_system if reaped else 0.0)


def _sample(meter: CpuMeter, processes: Processes, postmaster: int | None) -> None:
    roots = [(p.pid, _kind(processes, p.pid)) for p in list(processes.running)]
    roots.append((os.getpid(), "bench"))
    if postmaster is not None:
        roots.append((postmaster, "postgres"))
    for pid, kind in roots:
        try:
            root = psutil.Process(pid)
            # The bench's own children are the processes counted on their own.
            children = [] if kind == "bench" else root.children(recursive=True)
            members = [(root, kind == "postgres"), *((child, False) for child in children)]
        except psutil.Error:
            continue
        for member, reaped in members:
            try:
                key = (member.pid, member.create_time())
                seconds = _cpu(member, reaped=reaped)
            except psutil.Error:
                continue
            meter.first.setdefault(key, seconds)
            meter.last[key] = (kind, seconds)


def _postmaster(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def cpu_meter(processes: Processes, pgdata: Path) -> Iterator[CpuMeter]:
    """Meter the CPU of every process of the run while the block runs."""
    meter = CpuMeter()
    postmaster = _postmaster(pgdata)
    _sample(meter, processes, postmaster)
    existing = set(meter.first)
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(1.0):
            _sample(meter, processes, postmaster)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield meter
    finally:
        stop.set()
        thread.join()
        _sample(meter, processes, postmaster)
        seconds = time.perf_counter() - meter.started
        for key, (kind, last) in meter.last.items():
            start = meter.first[key] if key in existing else 0.0
            meter.result[kind] = meter.result.get(kind, 0.0) + (last - start) / seconds


def cores(usage: dict[str, float]) -> str:
    """``postgres 0.9, serve 0.8 …``: cores used by each kind, busiest first."""
    ordered = sorted(usage.items(), key=lambda item: -item[1])
    return ", ".join(f"{kind} {value:.2f}" for kind, value in ordered if value >= 0.01)


# --- Rows and details ------------------------------------------------------------------


def _ratio_row(  # noqa: PLR0913 (a row's cells)
    figure: str,
    hearth: float,
    baseline: float,
    unit: str,
    target: float | None,
    *,
    at_least: bool,
) -> tuple[str, ...]:
    """A row with the ratio; ``target`` None: shown, not judged."""
    ratio = hearth / baseline
    cells = (figure, f"{hearth:.1f} {unit}", f"{baseline:.1f} {unit}", f"{ratio:.2f}x")
    if target is None:
        return (*cells, "", "")
    ok = ratio >= target if at_least else ratio <= target
    return (*cells, f"{'>=' if at_least else '<='} {target:g}x", met(ok))


def rows(count: int, copy_s: float, update_s: float, rounds: list[Round]) -> list[tuple[str, ...]]:
    one, two = rounds
    table: list[tuple[str, ...]] = [("figure", "Hearth", "baseline", "ratio", "target", "")]
    table.append(
        _ratio_row(
            "ingest, POST /documents/batch vs COPY",
            one.ingested.per_second(),
            count / copy_s,
            "docs/s",
            TARGET_INGEST,
            at_least=True,
        )
    )
    table.append(
        _ratio_row(
            "embedding pipeline, 1 worker vs batched UPDATE",
            one.pipeline.per_second(),
            count / update_s,
            "docs/s",
            TARGET_PIPELINE,
            at_least=True,
        )
    )
    if one.search is not None:
        search = one.search
        table.append(
            _ratio_row(
                "search p50, GET /documents/search vs direct",
                p50(search.api_ms),
                p50(search.direct_ms),
                "ms",
                None,
                at_least=False,
            )
        )
        table.append(
            _ratio_row(
                "search p95, GET /documents/search vs direct",
                p95(search.api_ms),
                p95(search.direct_ms),
                "ms",
                TARGET_SEARCH_P95,
                at_least=False,
            )
        )
        table.append(
            _ratio_row(
                "  the same, vs direct + bare embedding call",
                p95(search.api_ms),
                p95(search.embedded_ms),
                "ms",
                None,
                at_least=False,
            )
        )
        table.append(
            (
                "recall@10, HNSW search vs exact",
                f"{search.api_recall:.3f}",
                f"{search.direct_recall:.3f} (direct)",
                "",
                f">= {TARGET_RECALL:g}",
                met(search.api_recall >= TARGET_RECALL),
            )
        )
    start, end, slope = one.pipeline.rss(0)
    flat = slope is not None and abs(slope) <= FLAT_MB_PER_10K
    table.append(
        (
            "worker RSS (main + pool), start -> end",
            f"{start:.1f} -> {end:.1f} MB",
            "",
            "-" if slope is None else f"{slope:+.2f} MB/10k docs",
            f"flat (|slope| <= {FLAT_MB_PER_10K:g})",
            met(flat),
        )
    )
    table.append(
        _ratio_row(
            "ingest, 2 api processes vs 1",
            two.ingested.per_second(),
            one.ingested.per_second(),
            "docs/s",
            None,
            at_least=True,
        )
    )
    table.append(
        _ratio_row(
            "pipeline, 2 workers vs 1",
            two.pipeline.per_second(),
            one.pipeline.per_second(),
            "docs/s",
            None,
            at_least=True,
        )
    )
    for round_ in rounds:
        lost = count - round_.embedded + round_.never_asked
        table.append(
            (
                f"{round_.scale} api + {round_.scale} worker(s): embedded twice / lost",
                f"{round_.embedded_twice} / {count - round_.embedded}",
                "",
                "",
                "0 / 0",
                met(round_.embedded_twice == 0 and lost == 0 and round_.stored == count),
            )
        )
    return table


def details(count: int, copy_s: float, update_s: float, rounds: list[Round]) -> list[str]:
    lines = [
        (
            f"  corpus: {count} documents of 1.1-2.1 KB, vectors of "
            f"{documents_corpus.DIMENSIONS} dimensions, {documents_corpus.MODEL} (the double)"
        ),
        (
            f"  COPY: {copy_s:.1f} s; batched UPDATE of the vectors: {update_s:.1f} s "
            f"({UPDATE_BATCH} rows a statement, HNSW index in place)"
        ),
    ]
    for round_ in rounds:
        pipeline = round_.pipeline
        lines += [
            (
                f"  {round_.scale} api process(es): ingest {round_.ingested.seconds:.1f} s, "
                f"{round_.ingested.per_second():.0f} docs/s; cores: {cores(round_.ingest_cpu)}"
            ),
            (
                f"  {round_.scale} worker(s): pipeline {pipeline.span_seconds:.1f} s first to "
                f"last store ({pipeline.wall_seconds:.1f} s from starting the workers), "
                f"{pipeline.per_second():.0f} docs/s, {round_.embedding_requests} embedding "
                f"requests; cores: {cores(round_.pipeline_cpu)}"
            ),
        ]
        for worker in range(pipeline.workers):
            start, end, slope = pipeline.rss(worker)
            shown = "-" if slope is None else f"{slope:+.2f} MB per 10 000 documents"
            lines.append(f"    worker {worker + 1} RSS: {start:.1f} -> {end:.1f} MB, {shown}")
        if round_.search is not None:
            search = round_.search
            lines.append(
                f"  search: {len(search.api_ms)} queries, k=10, hnsw.ef_search={search.ef_search}: "
                f"API p50 {p50(search.api_ms):.2f} ms p95 {p95(search.api_ms):.2f} ms; "
                f"direct p50 {p50(search.direct_ms):.2f} ms p95 {p95(search.direct_ms):.2f} ms; "
                f"direct after a bare embedding call p50 {p50(search.embedded_ms):.2f} ms "
                f"p95 {p95(search.embedded_ms):.2f} ms; "
                f"GET /documents/{{id}} p50 {p50(search.floor_ms):.2f} ms "
                f"p95 {p95(search.floor_ms):.2f} ms"
            )
    return lines
