"""Traces end to end: a real `hearth serve` and a real `hearth worker` (prefork) export over
OTLP/HTTP to a local receiver that decodes the protobuf, and one trace spans the request,
the task run in the worker and the worker's call to the LLM. Log lines carry its id. One
test, one stack: embedded PostgreSQL takes a while to start.

The stack runs on embedded PostgreSQL (the suite's server has no pgvector, and without it
the worker never calls the model) with the suite's Redis as broker, as Compose runs it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_llm import FakeLLM, fake_llm
from tests.support.otlp import OTLPReceiver, Span, otlp_receiver
from tests.support.process import HearthServer, clean_environment, hearth_server
from tests.support.services import free_port
from tests.support.tokens import create_with_cli
from tests.support.worker import WorkerProcess, hearth_worker

FIXTURE_NEEDS = {"traced_stack": ("embedded_postgres", "worker")}

EMBED_TASK = "hearth.embed_documents"


@dataclass
class Stack:
    server: HearthServer
    worker: WorkerProcess
    llm: FakeLLM
    receiver: OTLPReceiver


@pytest.fixture
def traced_stack(tmp_path: Path, queue_redis: str) -> Iterator[Stack]:
    """`hearth serve` and `hearth worker`, both told the receiver's URL the way an operator
    would (OTEL_EXPORTER_OTLP_ENDPOINT in their environment), and an Ollama double."""
    with otlp_receiver() as receiver, fake_llm() as llm:
        env = clean_environment(
            HEARTH_DATA_DIR=str(tmp_path / "data"),
            REDIS_URL=queue_redis,
            LLM_PROVIDER="ollama",
            LLM_ENDPOINT=llm.url,
            EMBEDDING_MODEL="nomic-embed-text",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
            # The SDK's own setting: export every 100 ms, not every 5 s, so the test is quick.
            OTEL_BSP_SCHEDULE_DELAY="100",
            # No sweep during the test: the run this test's request queues embeds its document.
            EMBEDDING_SWEEP_SECONDS="3600",
        )
        with hearth_server(env, tmp_path, free_port()) as server:
            server.wait_until("/readyz", 200)
            token = create_with_cli(env, tmp_path, "read", "write")
            server.headers["Authorization"] = f"Bearer {token}"
            with hearth_worker(env, tmp_path, concurrency=2) as worker:
                # A starting worker asks for a run only when a document waits, and asks
                # before it says it is ready: none waits yet, so the run the test's request
                # queues is the one that embeds its document.
                yield Stack(server, worker, llm, receiver)


def _embedded(server: HearthServer, document_id: int, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.get(f"/documents/{document_id}").json()["status"] == "embedded":
            return
        time.sleep(0.2)
    raise AssertionError(f"document {document_id} was never embedded")


def _request_span(spans: list[Span]) -> Span | None:
    return next(
        (s for s in spans if s.name == "POST /documents" and s.kind == "server"),
        None,
    )


def _trace_of_the_request(receiver: OTLPReceiver) -> tuple[Span, list[Span]]:
    """The request's span and every span of its trace, once the task's span has arrived: it
    ends last (after the LLM call and the store, its children), and a process exports its
    spans in the order they end."""

    def complete(spans: list[Span]) -> bool:
        request = _request_span(spans)
        return request is not None and any(
            s.trace_id == request.trace_id and s.name == f"run/{EMBED_TASK}" for s in spans
        )

    spans = receiver.wait_for(complete, what="trace from POST /documents to the end of its task")
    request = _request_span(spans)
    assert request is not None
    return request, [s for s in spans if s.trace_id == request.trace_id]


def _descends_from(span: Span, ancestor: Span, by_id: dict[str, Span]) -> bool:
    current: Span | None = span
    while current is not None:
        if current.span_id == ancestor.span_id:
            return True
        current = by_id.get(current.parent_span_id)
    return False


def test_one_trace_spans_the_request_the_task_and_the_llm_call(traced_stack: Stack) -> None:
    server, receiver = traced_stack.server, traced_stack.receiver
    text = f"The boiler is serviced each October {uuid.uuid4().hex}."
    added = httpx.post(
        f"{server.url}/documents", json={"text": text}, headers=server.headers, timeout=10
    )
    assert added.status_code == 202, added.text
    [document_id] = added.json()["ids"]
    _embedded(server, document_id)

    request, trace = _trace_of_the_request(receiver)
    by_id = {s.span_id: s for s in trace}

    # The request, in the web app: FastAPI's span, named after the route template.
    assert request.resource["hearth.process"] == "web"
    assert request.service == "hearth"
    assert request.attributes["http.route"] == "/documents"
    # Its queries, and the task it sent (continued through the message's headers).
    web_queries = [s for s in trace if s.kind == "client" and _is_sql(s) and _in(s, "web")]
    assert any(_descends_from(s, request, by_id) for s in web_queries), _names(trace)
    # The rows went in by COPY, through the driver itself: a span of their own all the same.
    [copied] = [s for s in web_queries if "COPY documents" in _statement(s)]
    assert _descends_from(copied, request, by_id)
    [sent] = [s for s in trace if s.name == f"apply_async/{EMBED_TASK}" and _in(s, "web")]
    assert sent.kind == "producer"
    assert _descends_from(sent, request, by_id)

    # The task, run in a pool child of the worker, child of the send.
    [run] = [s for s in trace if s.name == f"run/{EMBED_TASK}"]
    assert run.kind == "consumer"
    assert run.resource["hearth.process"] == "worker"
    assert run.parent_span_id == sent.span_id
    # Its call to the model: httpx's span, a child of the task's; its queries too.
    [embed] = [s for s in trace if s.kind == "client" and _url(s).endswith("/api/embed")]
    assert embed.resource["hearth.process"] == "worker"
    assert embed.parent_span_id == run.span_id
    assert (
        embed.attributes.get("http.response.status_code", embed.attributes.get("http.status_code"))
        == 200
    )
    worker_queries = [s for s in trace if _is_sql(s) and _in(s, "worker")]
    assert worker_queries, _names(trace)
    assert all(_descends_from(s, run, by_id) for s in worker_queries)
    # Every span of the trace arrived, parents included: no span left open or lost.
    roots = [s for s in trace if s.parent_span_id not in by_id]
    assert roots == [request], _names(roots)
    # The LLM server got the trace too (W3C traceparent), as any instrumented server would.
    [call] = [r for r in traced_stack.llm.received if r.path == "/api/embed"]
    assert call.headers.get("traceparent", "").split("-")[1] == request.trace_id
    assert receiver.refused == []

    _log_lines_carry_the_trace_id(traced_stack, request, trace)
    _the_search_statements_have_their_span(traced_stack)


def _the_search_statements_have_their_span(stack: Stack) -> None:
    """A search sends its statements through the driver, pipelined (the count and settings,
    then the search by distance): one SQL span under the request holds both."""
    found = stack.server.get("/documents/search?q=boiler&k=3")
    assert found.status_code == 200, found.text

    def searched(spans: list[Span]) -> bool:
        return any(s.name == "GET /documents/search" and s.kind == "server" for s in spans) and any(
            "<=>" in _statement(s) for s in spans
        )

    spans = stack.receiver.wait_for(searched, what="the search request and its statements")
    [request] = [s for s in spans if s.name == "GET /documents/search" and s.kind == "server"]
    by_id = {s.span_id: s for s in spans}
    # The search's statement orders by distance (<=>); no other statement does.
    [statements] = [s for s in spans if "<=>" in _statement(s)]
    assert statements.kind == "client"
    assert _is_sql(statements)
    assert _in(statements, "web")
    assert "set_config('hnsw.ef_search'" in _statement(statements)
    assert statements.name.startswith("SELECT ")
    assert _descends_from(statements, request, by_id)


def _log_lines_carry_the_trace_id(stack: Stack, request: Span, trace: list[Span]) -> None:
    """The request's log line and the task's lines name the trace and the span they were
    written in: from a log line to its trace in one search."""
    span_ids = {s.span_id for s in trace}
    [finished] = [
        line
        for line in stack.server.logs()
        if line.get("event") == "request_finished" and line.get("path") == "/documents"
    ]
    assert finished["trace_id"] == request.trace_id
    assert finished["span_id"] in span_ids
    embedded = _wait_for_line(stack.worker, "documents_embedded")
    assert embedded["trace_id"] == request.trace_id
    assert embedded["span_id"] in span_ids
    # Outside a span (start-up), no ids.
    [ready] = [line for line in stack.server.logs() if line.get("event") == "hearth_ready"]
    assert "trace_id" not in ready


def _wait_for_line(worker: WorkerProcess, event: str, within: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        lines = [line for line in worker.logs() if line.get("event") == event]
        if lines:
            return lines[-1]
        time.sleep(0.1)
    raise AssertionError(f"the worker never logged {event}")


def _is_sql(span: Span) -> bool:
    return "postgresql" in (span.attributes.get("db.system"), span.attributes.get("db.system.name"))


def _in(span: Span, process: str) -> bool:
    return span.resource.get("hearth.process") == process


def _statement(span: Span) -> str:
    return str(span.attributes.get("db.statement") or span.attributes.get("db.query.text") or "")


def _url(span: Span) -> str:
    return str(span.attributes.get("url.full") or span.attributes.get("http.url") or "")


def _names(spans: list[Span]) -> list[str]:
    return [f"{s.resource.get('hearth.process')}:{s.kind}:{s.name}" for s in spans]
