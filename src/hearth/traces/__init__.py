"""Optional traces (OpenTelemetry over OTLP/HTTP), on when OTEL_EXPORTER_OTLP_ENDPOINT is set.

This module imports nothing of OpenTelemetry: the rest of Hearth calls it whether traces are
on or off, and off each call is a flag test. ``hearth.traces.setup`` (the SDK, the exporter,
the instrumentations) is imported only once traces are switched on: ``running`` in the web
app's lifespan, ``hearth.traces.worker`` in each pool child of a worker.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import AsyncEngine

# Paths whose requests are not traced: probes and scrapes arrive every few seconds from
# Docker, Kubernetes or Prometheus, and would bury the requests people look for.
UNTRACED_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
UNTRACED_PREFIXES = ("/static/",)


class Settings(Protocol):
    """What traces read of Hearth's settings (``hearth.config.settings.Settings`` has it;
    named here so that this package, which the database engine imports, imports no config)."""

    otel_exporter_otlp_endpoint: str | None
    service_name: str


class _State:
    """Whether this process exports traces now (set by ``setup.start``, cleared by its stop)."""

    on = False


state = _State()


def configured(settings: Settings) -> bool:
    """Whether the settings ask for traces (an OTLP endpoint is set)."""
    return bool(settings.otel_exporter_otlp_endpoint)


@contextmanager
def running(settings: Settings, *, process: str) -> Iterator[None]:
    """Export this process's spans while the block runs, when the settings ask for it; flush
    and shut the exporter down after. Nothing happens (nothing is imported) otherwise."""
    if not configured(settings):
        yield
        return
    from hearth.traces import setup

    tracing = setup.start(settings, process=process)
    try:
        yield
    finally:
        tracing.stop()


@contextmanager
def sending(task_name: str, task_id: str) -> Iterator[dict[str, str]]:
    """Around the publish of a task: the message headers that carry the current trace to the
    worker (inside a ``send`` span), or no headers when traces are off."""
    if not state.on:
        yield {}
        return
    from hearth.traces import setup

    with setup.producer_span(task_name, task_id) as headers:
        yield headers


def watch_engine(engine: AsyncEngine) -> None:
    """Trace ``engine``'s statements when traces are on (each engine is watched once)."""
    if state.on:
        from hearth.traces import setup

        setup.watch_engine(engine)


@contextmanager
def driver_statements(statements: Sequence[str], database: str) -> Iterator[None]:
    """Around statements sent through psycopg itself (``COPY``, a pipeline), which the
    engine's instrumentation does not see: a span like those it makes for the rest, with
    ``statements`` (never a parameter), when traces are on; nothing otherwise."""
    if not state.on:
        yield
        return
    from hearth.traces import setup

    with setup.driver_span(";\n".join(statements), database):
        yield


def untraced(scope: Mapping[str, object]) -> bool:
    """Whether an ASGI request is left out of traces (probes, scrapes, static files)."""
    path = scope.get("path")
    return isinstance(path, str) and (path in UNTRACED_PATHS or path.startswith(UNTRACED_PREFIXES))


def instrument_app(app: FastAPI, settings: Settings) -> None:
    """When traces are configured: what ``untraced`` leaves out makes no span at all, not
    even for the queries it runs (FastAPI's own ``exclude`` skips only the request's span)."""
    if configured(settings):
        from hearth.traces import setup

        app.add_middleware(setup.Untraced)
