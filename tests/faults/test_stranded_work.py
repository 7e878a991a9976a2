"""Accepted work is never stranded, and a worker stops within its bound: faults injected into
real processes. A PostgreSQL of the test's own is stopped under a worker embedding; a worker
is SIGTERMed with a backlog; a worker starts before the migrations; the LLM goes away and
comes back. Documents are written straight into the database, as the API stores them (the
run it asks for may be lost; the sweep is what must find them)."""

from __future__ import annotations

import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from celery import Celery

from hearth.worker.run import STOP_BOUND_SECONDS
from tests.support.fake_llm import FakeLLM, fake_llm
from tests.support.postgres import OwnedPostgres
from tests.support.process import HEARTH, clean_environment, run_hearth
from tests.support.services import free_port
from tests.support.worker import WorkerProcess, hearth_worker

pytestmark = [pytest.mark.embedded_postgres, pytest.mark.worker]

SWEEP_SECONDS = "2"


@pytest.fixture(scope="module")
def postgres() -> Iterator[OwnedPostgres]:
    """One server for the module (initdb takes a while); each test gets a database on it.
    Not under pytest's temporary directory: every pytest session that starts sets that
    back to 0700, which would lock the server's own user out of its files."""
    with tempfile.TemporaryDirectory(prefix="hearth-faults-") as root:
        server = OwnedPostgres(Path(root), free_port()).init()
        server.start()
        yield server
        if server.running():
            server.stop()


def new_database(postgres: OwnedPostgres, cwd: Path, *, migrated: bool = True) -> str:
    name = f"stranded_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = f"{postgres.url.rsplit('/', 1)[0]}/{name}"
    if migrated:
        migrate(url, cwd)
    return url


def migrate(url: str, cwd: Path) -> None:
    done = run_hearth("migrate", env=clean_environment(DATABASE_URL=url), cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def worker_env(url: str, llm: FakeLLM, redis_url: str | None = None) -> dict[str, str]:
    """A worker on ``url``; the queue in Redis, or without it in PostgreSQL (embedded mode)."""
    queue = {"REDIS_URL": redis_url} if redis_url else {}
    return clean_environment(
        DATABASE_URL=url,
        LLM_PROVIDER="ollama",
        LLM_ENDPOINT=llm.url,
        EMBEDDING_MODEL="nomic-embed-text",
        EMBEDDING_SWEEP_SECONDS=SWEEP_SECONDS,
        WORKER_HEARTBEAT_SECONDS="1",
        **queue,
    )


def add_documents(url: str, count: int) -> list[str]:
    """``count`` pending documents with texts of their own; the texts."""
    texts = [f"note {i} {uuid.uuid4().hex}" for i in range(count)]
    with psycopg.connect(url) as connection:
        connection.cursor().executemany(
            "INSERT INTO documents (text) VALUES (%s)", [(text,) for text in texts]
        )
    return texts


def counts(url: str) -> tuple[int, int]:
    """(embedded, pending) documents."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FILTER (WHERE embedded_at IS NOT NULL), "
            "count(*) FILTER (WHERE embedded_at IS NULL) FROM documents"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def errors(url: str) -> list[str | None]:
    with psycopg.connect(url) as connection:
        return [row[0] for row in connection.execute("SELECT error FROM documents ORDER BY id")]


def embed_calls(llm: FakeLLM) -> int:
    return sum(1 for request in llm.received if request.path == "/api/embed")


def times_embedded(llm: FakeLLM, since: int = 0) -> Counter[str]:
    """How often the model was asked for each text (in the requests from ``since`` on)."""
    return Counter(
        text
        for request in llm.received[since:]
        if request.path == "/api/embed"
        for text in request.body["input"]
    )


def wait_until(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(0.2)


def test_a_database_stopped_mid_run_strands_nothing_and_embeds_each_once(
    postgres: OwnedPostgres, queue_redis: str, tmp_path: Path
) -> None:
    """PostgreSQL stops for ~10 s while the model embeds a batch: afterwards every document
    is embedded, and the model was asked for each exactly once (the batch it answered while
    the database was away is stored when it is back, not asked for again)."""
    url = new_database(postgres, tmp_path)
    texts = add_documents(url, 80)
    with fake_llm() as llm:
        llm.mode, llm.delay = "slow", 1.5
        with hearth_worker(worker_env(url, llm, queue_redis), tmp_path) as worker:
            wait_until(lambda: embed_calls(llm) >= 2, 60, "the second batch sent to the model")
            stopped = time.monotonic()
            postgres.stop()
            try:
                worker.wait_for_log("worker_heartbeat_failed", timeout=30)
                wait_until(lambda: time.monotonic() - stopped > 10, 30, "a 10 s outage")
            finally:
                postgres.start()
            wait_until(lambda: counts(url)[1] == 0, 90, "every document embedded")
    assert times_embedded(llm) == Counter(texts)  # each text once, none other
    assert counts(url) == (80, 0)
    assert set(errors(url)) == {None}


def test_sigterm_finishes_the_batch_in_flight_and_hands_back_the_rest(
    postgres: OwnedPostgres, queue_redis: str, tmp_path: Path
) -> None:
    """A worker with a 320-document backlog: a ping queued behind it runs after one batch,
    not after the backlog; SIGTERM makes it finish at most the call in flight and exit
    within the bound; the next worker embeds the rest, each document once."""
    url = new_database(postgres, tmp_path)
    texts = add_documents(url, 320)  # ten batches
    with fake_llm() as llm:
        llm.mode, llm.delay = "slow", 0.6
        env = worker_env(url, llm, queue_redis)
        with hearth_worker(env, tmp_path) as worker:  # one task at a time
            wait_until(lambda: embed_calls(llm) >= 2, 60, "the second batch sent to the model")
            client = Celery(broker=queue_redis, backend=queue_redis)
            try:
                assert client.send_task("hearth.ping").get(timeout=60)["pong"]
            finally:
                client.close()
            assert counts(url)[1] > 0, "the ping waited for the whole backlog"

            calls_before = embed_calls(llm)
            started = time.monotonic()
            assert worker.stop(timeout=STOP_BOUND_SECONDS) == 0
            took = time.monotonic() - started
        assert embed_calls(llm) - calls_before <= 1, "it went on embedding after SIGTERM"
        _, pending = counts(url)
        assert pending > 0, f"all embedded before it stopped ({took:.1f} s)"

        with hearth_worker(env, tmp_path):
            wait_until(lambda: counts(url)[1] == 0, 120, "the next worker embeds the rest")
    assert times_embedded(llm) == Counter(texts)


def test_sigterm_mid_run_starts_no_new_call_to_the_model(
    postgres: OwnedPostgres, queue_redis: str, tmp_path: Path
) -> None:
    """A quick model: a run would claim batch after batch for its budget (a second). SIGTERM
    reaches the pool's child through the worker's stop flag: the run finishes the call in
    flight, stores its batch and claims no other, and the worker exits within the bound."""
    url = new_database(postgres, tmp_path)
    texts = add_documents(url, 1600)  # fifty batches
    with fake_llm() as llm:
        llm.mode, llm.delay = "slow", 0.1
        env = worker_env(url, llm, queue_redis)
        with hearth_worker(env, tmp_path) as worker:
            wait_until(lambda: embed_calls(llm) >= 2, 60, "the second batch sent to the model")
            calls_before = embed_calls(llm)
            assert worker.stop(timeout=STOP_BOUND_SECONDS) == 0
        # At most a call sent between the count and the signal: not a second's worth.
        assert embed_calls(llm) - calls_before <= 1, "it went on embedding after SIGTERM"
        embedded, pending = counts(url)
        assert pending > 0
        assert embedded == sum(times_embedded(llm).values())  # each answered batch stored

        with hearth_worker(env, tmp_path):
            wait_until(lambda: counts(url)[1] == 0, 120, "the next worker embeds the rest")
    assert times_embedded(llm) == Counter(texts)


def test_a_worker_started_before_the_migrations_waits_for_them(
    postgres: OwnedPostgres, tmp_path: Path
) -> None:
    """On an empty database the worker waits (no task fails); after `hearth migrate` it
    starts, its heartbeat with it, and its sweep embeds what was stored: no restart. The
    queue lives in PostgreSQL here, as in the embedded mode."""
    url = new_database(postgres, tmp_path, migrated=False)
    with fake_llm() as llm:
        output = tmp_path / "worker.log"
        with output.open("w") as sink:
            process = subprocess.Popen(
                [HEARTH, "worker", "--concurrency", "1"],
                env={**worker_env(url, llm), "LOG_LEVEL": "DEBUG"},  # a sweep not needed
                cwd=tmp_path,
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        worker = WorkerProcess(process, output)
        try:
            worker.wait_for_log("worker_waiting_for_migrations")
            migrate(url, tmp_path)
            worker.wait_for_log(" ready.")
            wait_until(lambda: _heartbeats(url) > 0, 30, "the worker's heartbeat")
            worker.wait_for_log("periodic_task_not_needed")  # a sweep was due: nothing yet
            texts = add_documents(url, 3)  # no run asked for: the sweep must find them
            wait_until(lambda: counts(url) == (3, 0), 60, "the documents embedded")
            assert process.poll() is None
        finally:
            assert worker.stop(timeout=STOP_BOUND_SECONDS) == 0
    assert times_embedded(llm) == Counter(texts)
    assert '"level": "error"' not in output.read_text()


def test_a_worker_at_rest_sends_no_embedding_run(
    postgres: OwnedPostgres, queue_redis: str, tmp_path: Path
) -> None:
    """Nothing pending: neither the worker's start nor its sweeps send a run (which would
    only wake its pool process to find nothing); the first sweep after a document appears
    sends one, and it is embedded."""
    url = new_database(postgres, tmp_path)
    with fake_llm() as llm:
        env = {**worker_env(url, llm, queue_redis), "LOG_LEVEL": "DEBUG"}
        with hearth_worker(env, tmp_path) as worker:

            def sweeps_not_needed() -> int:
                return worker.output.read_text().count("periodic_task_not_needed")

            # Two sweeps due, a period apart.
            wait_until(lambda: sweeps_not_needed() >= 2, 30, "two sweeps found not needed")
            assert _embedding_runs(url) == 0
            assert "Sending due task embedding-sweep" not in worker.output.read_text()
            texts = add_documents(url, 2)  # as a lost run would leave them: none asked for
            wait_until(lambda: counts(url) == (2, 0), 60, "the documents embedded")
            assert "Sending due task embedding-sweep" in worker.output.read_text()
            # Runs are counted where the first was not (each child writes its runs down
            # a moment after they end).
            wait_until(lambda: _embedding_runs(url) >= 1, 10, "the run written down")
    assert times_embedded(llm) == Counter(texts)


def _embedding_runs(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM task_runs WHERE name = 'hearth.embed_documents'"
        ).fetchone()
    return int(row[0]) if row else 0


def _heartbeats(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM worker_heartbeats").fetchone()
    return int(row[0]) if row else 0


def test_pending_embeddings_resume_soon_after_the_llm_returns(
    postgres: OwnedPostgres, queue_redis: str, tmp_path: Path
) -> None:
    """The LLM fails for ~13 s: the reason is recorded on each document; once it answers
    again the documents are embedded within a sweep period or two, not after a backoff
    grown to tens of seconds (a doubling backoff from 10 s would wait until 30 s)."""
    url = new_database(postgres, tmp_path)
    texts = add_documents(url, 30)  # one batch: every one is tried, and fails
    with fake_llm() as llm:
        llm.mode = "error"
        with hearth_worker(worker_env(url, llm, queue_redis), tmp_path):
            failed = time.monotonic()
            wait_until(lambda: None not in errors(url), 30, "the failure recorded on each")
            assert all("500" in (error or "") for error in errors(url))
            wait_until(lambda: time.monotonic() - failed > 13, 30, "a 13 s outage")
            back = len(llm.received)
            llm.mode = "ok"
            wait_until(lambda: counts(url) == (30, 0), 12, "embedded soon after the LLM returned")
    assert times_embedded(llm, since=back) == Counter(texts)
    assert set(errors(url)) == {None}
