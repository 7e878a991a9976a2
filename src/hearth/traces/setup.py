"""The OpenTelemetry side of traces: the tracer provider, its OTLP/HTTP exporter, and the
instrumentations. Imported only when OTEL_EXPORTER_OTLP_ENDPOINT is set (``hearth.traces``).

FastAPI traces its own requests once a tracer provider is set (its native telemetry, FastAPI
0.165 and later): server spans named after the route template, and spans for dependencies,
the endpoint and serialization. httpx and Celery are instrumented here, SQLAlchemy engine by
engine (``watch_engine``): Hearth's engine module bound ``create_async_engine`` before any
instrumentation could wrap it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.sqlalchemy.version import __version__ as sqlalchemy_version
from opentelemetry.instrumentation.utils import (
    is_instrumentation_enabled,
    suppress_instrumentation,
)
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from hearth.log import get_logger
from hearth.traces import state, untraced
from hearth.version import hearth_version

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.types import ASGIApp, Receive, Scope, Send

    from hearth.traces import Settings

log = get_logger(__name__)

# The engines already watched, by identity: watching one twice would double its spans.
_WATCHED_ATTRIBUTE = "_hearth_traced"


@dataclass
class Tracing:
    """The provider this process exports its spans through; ``stop`` flushes and ends it."""

    provider: TracerProvider
    process: str

    def stop(self) -> None:
        """Send what is buffered, then shut the exporter down. A collector that is down
        delays this by the exporter's timeout at most (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s:
        about 7 s of retries measured), well within the stop bounds of the server and the
        worker; shutting down flushes, so no separate flush (it would wait as long again)."""
        state.on = False
        HTTPXClientInstrumentor().uninstrument()
        if self.process == "worker":
            CeleryInstrumentor().uninstrument()  # type: ignore[no-untyped-call]  # untyped library
        self.provider.shutdown()
        log.info("traces_stopped", process=self.process)


_started: list[TracerProvider] = []  # OpenTelemetry takes one global provider per process


def start(settings: Settings, *, process: str) -> Tracing:
    """Set this process's tracer provider (a batch processor, the OTLP/HTTP exporter) and
    instrument httpx, and Celery in a worker. ``process`` (``web`` or ``worker``) is also a
    resource attribute.

    Not Celery in the web app: it sends tasks by name, and Celery's instrumentation, finding
    no such task in its registry, would start a span it never ends and put that span in the
    message instead of the request's (``producer_span`` does the web app's part)."""
    provider = TracerProvider(resource=resource(settings, process))
    provider.add_span_processor(BatchSpanProcessor(exporter(settings)))
    if _started:
        # A second app in one process (tests): the global provider cannot be replaced, and
        # the first one is shut down. Its spans are dropped; say so rather than pretend.
        log.warning("traces_not_restarted", process=process)
    else:
        trace.set_tracer_provider(provider)
        _started.append(provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    if process == "worker":
        CeleryInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]  # untyped library
    state.on = True
    log.info(
        "traces_started", process=process, service=provider.resource.attributes.get("service.name")
    )
    return Tracing(provider, process)


def resource(settings: Settings, process: str) -> Resource:
    """Who the spans come from. OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win (the SDK
    reads them); else the service is SERVICE_NAME, as in the log lines."""
    from_environment = OTELResourceDetector().detect().attributes
    ours = {
        "service.name": settings.service_name,
        "service.version": hearth_version(),
        "hearth.process": process,
    }
    return Resource.create({k: v for k, v in ours.items() if k not in from_environment})


def exporter(settings: Settings) -> OTLPSpanExporter:
    """OTLP/HTTP (protobuf) to ``<endpoint>/v1/traces``, as the OTLP specification derives the
    traces URL from OTEL_EXPORTER_OTLP_ENDPOINT; OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, headers,
    timeout, compression and certificates are read from the environment by the exporter."""
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return OTLPSpanExporter()
    base = str(settings.otel_exporter_otlp_endpoint).rstrip("/")
    return OTLPSpanExporter(endpoint=f"{base}/v1/traces")


def watch_engine(engine: AsyncEngine) -> None:
    """Trace the statements of ``engine`` (SQLAlchemy's spans: the statement, never its
    parameters)."""
    sync_engine = engine.sync_engine
    if getattr(sync_engine, _WATCHED_ATTRIBUTE, False):
        return
    tracer = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy", sqlalchemy_version)
    # The connection-usage metric goes nowhere: Hearth exports no OpenTelemetry metrics.
    usage = NoOpMeter("hearth").create_up_down_counter("db.client.connections.usage")
    EngineTracer(tracer, sync_engine, usage)  # type: ignore[no-untyped-call]  # untyped library
    setattr(sync_engine, _WATCHED_ATTRIBUTE, True)


@contextmanager
def driver_span(statement: str, database: str) -> Iterator[None]:
    """A CLIENT span for statements sent through the driver, named and described as the
    SQLAlchemy instrumentation's spans are ("SELECT hearth", ``db.statement``); none where
    instrumentation is suppressed (``Untraced``)."""
    if not is_instrumentation_enabled():
        yield
        return
    tracer = trace.get_tracer("hearth.db")
    operation = statement.split(maxsplit=1)[0].upper()
    attributes = {"db.system": "postgresql", "db.name": database, "db.statement": statement}
    with tracer.start_as_current_span(
        f"{operation} {database}", kind=trace.SpanKind.CLIENT, attributes=attributes
    ):
        yield


@contextmanager
def producer_span(task_name: str, task_id: str) -> Iterator[dict[str, str]]:
    """A PRODUCER span around a publish, named as Celery's instrumentation names its own
    (the web app sends tasks by name, which that instrumentation cannot follow: it looks
    the task up in a registry the web app never fills), and the headers carrying it."""
    tracer = trace.get_tracer("hearth.worker.queue")
    attributes = {
        "celery.action": "apply_async",
        "celery.task_name": task_name,
        "messaging.message.id": task_id,
    }
    with tracer.start_as_current_span(
        f"apply_async/{task_name}", kind=trace.SpanKind.PRODUCER, attributes=attributes
    ):
        headers: dict[str, str] = {}
        propagate.inject(headers)
        yield headers


class Untraced:
    """ASGI middleware: the requests ``hearth.traces.untraced`` names run with
    instrumentation suppressed, so their queries and calls make no root spans either."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, untraced if it is one of those."""
        if scope["type"] == "http" and untraced(scope):
            with suppress_instrumentation():
                await self.app(scope, receive, send)
            return
        await self.app(scope, receive, send)
