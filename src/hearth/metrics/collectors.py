"""The scrape-time families: what ``/metrics`` gathered (``Scrape``) as Prometheus metric
families, and the exposition of them beside those the app recorded."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from hearth.health.service import ComponentState

# What a component's status says about it: up 1, down 0; an unconfigured one is absent. A
# starting one is not up yet (0), for at most its start window: shorter than any alert's `for`.
UP = {"ok": 1.0, "starting": 0.0, "unreachable": 0.0}
TASK_LABELS = ["task", "outcome", "worker"]


@dataclass
class Scrape:
    """What one scrape found. None for a source that could not be read this time: its
    family is left out (and ``hearth_scrape_errors`` says so), the rest is answered."""

    components: dict[str, ComponentState] = field(default_factory=dict)
    queues: dict[str, int] | None = None
    documents: dict[str, int] | None = None
    workers: dict[str, list[Metric]] | None = None
    sources: dict[str, bool] = field(default_factory=dict)  # source -> whether it failed


def families(scrape: Scrape) -> Iterator[Metric]:
    """The gathered values as metric families."""
    yield from _components(scrape.components)
    if scrape.queues is not None:
        depth = GaugeMetricFamily(
            "hearth_queue_depth", "Tasks waiting in each queue of the broker", labels=["queue"]
        )
        for queue, count in sorted(scrape.queues.items()):
            depth.add_metric([queue], count)
        yield depth
    if scrape.documents is not None:
        documents = GaugeMetricFamily(
            "hearth_documents", "Documents stored, by status", labels=["status"]
        )
        for status, count in sorted(scrape.documents.items()):
            documents.add_metric([status], count)
        yield documents
    if scrape.workers is not None:
        yield GaugeMetricFamily(
            "hearth_workers_alive",
            "Workers whose heartbeat is fresh",
            value=len(scrape.workers),
        )
        # Declared even before any worker reported: a dashboard or an alert rule that asks
        # for them finds the family (empty), not a name Hearth seems not to know. The
        # workers' samples join these (``merged``).
        yield CounterMetricFamily(
            "hearth_tasks", "Tasks run, by task name, outcome and worker", labels=TASK_LABELS
        )
        yield HistogramMetricFamily(
            "hearth_task_duration_seconds",
            "How long each task ran, by task name and worker",
            labels=["task", "worker"],
        )
    errors = GaugeMetricFamily(
        "hearth_scrape_errors",
        "1 for each source this scrape could not read (its family is left out), else 0",
        labels=["source"],
    )
    for source, failed in sorted(scrape.sources.items()):
        errors.add_metric([source], 1.0 if failed else 0.0)
    yield errors


def _components(components: dict[str, ComponentState]) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "hearth_component_up",
        "1 when the component's last check was ok, 0 when unreachable or starting "
        "(absent: unconfigured)",
        labels=["component"],
    )
    latency = GaugeMetricFamily(
        "hearth_component_check_latency_seconds",
        "How long the component's last check took",
        labels=["component"],
    )
    changed = GaugeMetricFamily(
        "hearth_component_last_change_timestamp_seconds",
        "When the component's status last changed, as seen by this process (unix time)",
        labels=["component"],
    )
    for name, state in components.items():
        status = state.result.status
        if status not in UP:
            continue
        up.add_metric([name], UP[status])
        latency.add_metric([name], state.result.latency_ms / 1000)
        changed.add_metric([name], state.changed_at)
    yield from (up, latency, changed)


def merged(groups: Iterable[Iterable[Metric]]) -> list[Metric]:
    """One family per name: the samples of families of the same name (the web app's LLM
    calls and each worker's) together, as the exposition formats require."""
    by_name: dict[str, Metric] = {}
    for group in groups:
        for family in group:
            known = by_name.get(family.name)
            if known is None:
                by_name[family.name] = family
            elif known.type == family.type:
                known.samples.extend(family.samples)
    return list(by_name.values())


class _Families:
    def __init__(self, found: list[Metric]) -> None:
        self.found = found

    def collect(self) -> Iterator[Metric]:
        return iter(self.found)


def exposition(found: list[Metric], accept: str | None) -> tuple[bytes, str]:
    """``found`` in the format ``accept`` asks for (OpenMetrics when it names it, else
    Prometheus text 0.0.4); the body and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(found))
    return encoder(registry), content_type
