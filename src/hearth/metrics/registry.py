"""The metrics a Hearth process records as it goes: HTTP requests and LLM calls, in a
registry of the app's own (never prometheus_client's global one: the tests build many apps
in one process, and each must count only its own)."""

from __future__ import annotations

import platform
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from hearth.version import hearth_version

# Seconds. Hearth's routes answer in milliseconds; a health run may take its 2 s budget.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# An LLM call: a model list in milliseconds, a chat on a Raspberry Pi in a minute or two.
LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@dataclass(frozen=True)
class LLMMetrics:
    """``hearth_llm_calls_total`` and ``hearth_llm_call_duration_seconds`` for one process
    (``process`` is "web" or a worker's node name): records each call of an LLM adapter."""

    calls: Counter
    duration: Histogram
    process: str

    @classmethod
    def create(cls, registry: CollectorRegistry | None, process: str) -> LLMMetrics:
        """The LLM call metrics, registered in ``registry`` (None: a worker's child, whose
        values live in the multiprocess files)."""
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no ``_created`` series
        calls = Counter(
            "hearth_llm_calls",
            "Calls of the LLM server, by operation and outcome",
            ["operation", "outcome", "process"],
            registry=registry,
        )
        duration = Histogram(
            "hearth_llm_call_duration_seconds",
            "How long each LLM call took",
            ["operation", "process"],
            buckets=LLM_BUCKETS,
            registry=registry,
        )
        return cls(calls, duration, process)

    def record(self, operation: str, outcome: str, seconds: float) -> None:
        """Count one call of ``operation`` that ended in ``outcome`` after ``seconds``."""
        self.calls.labels(operation, outcome, self.process).inc()
        self.duration.labels(operation, self.process).observe(seconds)


@dataclass(frozen=True)
class AppMetrics:
    """Everything the web app records between scrapes, in its own registry."""

    registry: CollectorRegistry
    requests: Counter
    request_duration: Histogram
    llm: LLMMetrics

    @classmethod
    def create(cls) -> AppMetrics:
        """A fresh registry holding the web app's metrics and its build info."""
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no ``_created`` series
        registry = CollectorRegistry(auto_describe=False)
        build = Gauge(
            "hearth_build_info",
            "Hearth's version and the Python running it (always 1)",
            ["version", "python"],
            registry=registry,
        )
        build.labels(hearth_version(), platform.python_version()).set(1)
        requests = Counter(
            "hearth_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        duration = Histogram(
            "hearth_http_request_duration_seconds",
            "How long HTTP requests took to answer, by method and route template",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        return cls(registry, requests, duration, LLMMetrics.create(registry, "web"))
