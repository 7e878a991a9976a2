"""A local OTLP/HTTP receiver: what an OpenTelemetry collector, Jaeger or Tempo answers on
port 4318, on a port of its own. It decodes each ``POST /v1/traces`` (protobuf, gzip or not)
with OpenTelemetry's own message classes and keeps every span it was sent."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.support.services import serving

# The protobuf enum's values, by the names the specification gives span kinds.
KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class Span:
    """One span as it arrived: ids in hex, as tracing back ends and Hearth's logs show them."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    attributes: dict[str, Any]
    resource: dict[str, Any] = field(repr=False)

    @property
    def service(self) -> str:
        return str(self.resource.get("service.name"))


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def decode(body: bytes) -> list[Span]:
    """The spans of an OTLP ``ExportTraceServiceRequest``."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[Span] = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            spans.extend(
                Span(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    name=span.name,
                    kind=KINDS.get(span.kind, str(span.kind)),
                    attributes={a.key: _value(a.value) for a in span.attributes},
                    resource=resource,
                )
                for span in scope_spans.spans
            )
    return spans


class OTLPReceiver(ThreadingHTTPServer):
    """Answers ``POST /v1/traces`` as a collector does; ``spans`` holds what it decoded,
    ``refused`` the requests it could not (wrong path, type or body)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[Span] = []
        self.refused: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        """The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT names a collector."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def received(self) -> list[Span]:
        with self.lock:
            return list(self.spans)

    def wait_for(
        self, found: Callable[[list[Span]], bool], timeout: float = 60, what: str = "spans"
    ) -> list[Span]:
        """Every span received, once ``found`` holds of them; fail saying what came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = self.received()
            if found(spans):
                return spans
            time.sleep(0.1)
        names = sorted({f"{s.service}:{s.name}" for s in self.received()})
        raise AssertionError(f"no {what} in {timeout:g} s; received {names}")


class _Handler(BaseHTTPRequestHandler):
    server: OTLPReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        content_type = self.headers.get("Content-Type", "")
        if self.path != "/v1/traces" or content_type != "application/x-protobuf":
            self._refuse(404 if self.path != "/v1/traces" else 415, f"{self.path} {content_type}")
            return
        try:
            spans = decode(body)
        except Exception as exc:  # noqa: BLE001 (a body that is not the message: say so)
            self._refuse(400, f"undecodable: {exc}")
            return
        with self.server.lock:
            self.server.spans.extend(spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def _refuse(self, status: int, why: str) -> None:
        with self.server.lock:
            self.server.refused.append(why)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        """Quiet: the test reads what was received, not an access log."""


@contextmanager
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """An OTLP/HTTP receiver on a free port of 127.0.0.1, for the life of the block."""
    with serving(OTLPReceiver()) as receiver:
        yield receiver
