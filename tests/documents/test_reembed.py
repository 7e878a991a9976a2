"""Re-embedding after the embedding model changes, with real `hearth serve` and `hearth
worker` processes on a PostgreSQL with pgvector (the embedded queue: the broker is that
database) and the LLM double: through the route, through `hearth documents reembed`, and
with the worker killed half way."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.documents.conftest import models_of
from tests.support.fake_llm import SECOND_EMBEDDING_MODEL, FakeLLM, fake_llm
from tests.support.process import HEARTH, HearthServer, clean_environment, hearth_server
from tests.support.services import free_port
from tests.support.tokens import insert_token
from tests.support.worker import WorkerProcess, hearth_worker

FIXTURE_NEEDS = {"stack": ("embedded_postgres", "worker")}
FIRST = "nomic-embed-text"
SECOND = SECOND_EMBEDDING_MODEL


@dataclass
class Stack:
    server: HearthServer
    llm: FakeLLM
    env: dict[str, str]
    cwd: Path
    database: str


@pytest.fixture
def stack(vector_database: str, tmp_path: Path) -> Iterator[Stack]:
    """`hearth serve` on the test's pgvector database with the LLM double; the tests start
    their workers. EMBEDDING_MODEL is not in the environment: it is a runtime setting the
    tests change as the operator would."""
    with fake_llm() as llm:
        env = clean_environment(
            DATABASE_URL=vector_database,
            LLM_PROVIDER="ollama",
            LLM_ENDPOINT=llm.url,
            EMBEDDING_SWEEP_SECONDS="5",
            # A loaded test machine: a health check cut off by the 2 s budget opens the
            # LLM's circuit (hearth.llm.circuit) and search answers 503 for a while.
            HEALTH_BUDGET_SECONDS="10",
        )
        with hearth_server(env, tmp_path, free_port()) as server:
            server.wait_until("/readyz", 200)
            server.headers["Authorization"] = "Bearer " + insert_token(
                vector_database, ("read", "write")
            )
            yield Stack(server, llm, env, tmp_path, vector_database)


def _words(count: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "ze"]
    words = [a + b + c for a in syllables for b in syllables for c in syllables]
    return [" ".join(words[3 * i : 3 * i + 3]) for i in range(count)]


def _add(stack: Stack, texts: list[str]) -> list[int]:
    ids: list[int] = []
    for start in range(0, len(texts), 100):
        batch = {"documents": [{"text": t} for t in texts[start : start + 100]]}
        answer = httpx.post(
            f"{stack.server.url}/documents/batch",
            json=batch,
            headers=stack.server.headers,
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        ids += answer.json()["ids"]
    return ids


def _set_model(stack: Stack, model: str) -> None:
    """As an operator scripting it would: `hearth settings import`."""
    done = subprocess.run(
        [HEARTH, "settings", "import", "-"],
        input=f'{{"embedding_model": "{model}"}}',
        env=stack.env,
        cwd=stack.cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # A running server uses the values it read lately for RUNTIME_VALUES_CACHE_SECONDS.
    deadline = time.monotonic() + 30
    while _progress(stack)["model"] != model and time.monotonic() < deadline:
        time.sleep(0.3)


def _progress(stack: Stack) -> dict[str, Any]:
    answer = stack.server.get("/documents/progress")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _wait_for(stack: Stack, done: int, within: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + within
    now = _progress(stack)
    while now["done"] < done and time.monotonic() < deadline:
        time.sleep(0.3)
        now = _progress(stack)
    assert now["done"] >= done, now
    return now


def _search(stack: Stack, query: str) -> dict[str, Any]:
    """The search's answer; a 503 of the LLM's circuit (a check cut off on a loaded
    machine) is asked again, as a client would, until the probe closes it."""
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(
            f"{stack.server.url}/documents/search",
            params={"q": query, "k": 50},
            headers=stack.server.headers,
            timeout=10,
        )
        if answer.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _embedded_with(stack: Stack, model: str) -> int:
    return sum(
        len(r.body["input"])
        for r in stack.llm.received
        if r.path == "/api/embed" and r.body["model"] == model
    )


def test_reembed_through_the_route(stack: Stack) -> None:
    """The model changes: search finds nothing and says all are pending; the button's
    route queues them all, progress climbs to the total, and search finds them again,
    compared by the new model."""
    texts = _words(120)
    with hearth_worker(stack.env, stack.cwd):
        ids = _add(stack, texts)
        _wait_for(stack, done=len(ids))
        _set_model(stack, SECOND)
        overview = stack.server.get("/documents").json()
        assert overview["other_models"] == len(ids)
        assert overview["progress"] == {
            "model": SECOND,
            "done": 0,
            "total": len(ids),
            "waiting": 0,
            "failed": 0,
        }
        before = _search(stack, texts[7])
        assert (before["model"], before["results"], before["pending"]) == (SECOND, [], len(ids))

        queued = httpx.post(
            f"{stack.server.url}/documents/reembed", headers=stack.server.headers, timeout=30
        )
        assert queued.status_code == 202, queued.text
        assert queued.json()["queued"] == len(ids)
        _wait_for(stack, done=len(ids))

    after = _search(stack, texts[7])
    assert after["pending"] == 0
    assert after["results"][0]["id"] == ids[7]
    assert models_of(stack.database) == {SECOND: len(ids)}
    # Each document once, none twice, and the two queries.
    assert _embedded_with(stack, SECOND) == len(ids) + 2
    again = httpx.post(
        f"{stack.server.url}/documents/reembed", headers=stack.server.headers, timeout=30
    )
    assert again.json()["queued"] == 0


def test_reembed_from_the_command_line_follows_the_progress(stack: Stack) -> None:
    texts = _words(70)
    with hearth_worker(stack.env, stack.cwd):
        ids = _add(stack, texts)
        _wait_for(stack, done=len(ids))
        _set_model(stack, SECOND)
        done = subprocess.run(
            [HEARTH, "documents", "reembed", "--wait"],
            env=stack.env,
            cwd=stack.cwd,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Queued {len(ids)} documents to be embedded by {SECOND}."
    # Not a terminal: plain lines, no carriage return; the last ones say it is done.
    assert "\r" not in done.stdout
    assert lines[-2].startswith(f"{len(ids)}/{len(ids)} documents embedded by {SECOND} (100%)")
    assert lines[-1] == f"Done: every document is embedded by {SECOND}."
    assert models_of(stack.database) == {SECOND: len(ids)}


@pytest.mark.timeout(420)
def test_nothing_is_lost_when_the_worker_is_killed_half_way(stack: Stack) -> None:
    """SIGKILL the worker while it re-embeds: search meanwhile answers from the documents
    already re-embedded, by the new model only, and counts the rest as pending; the old
    vectors are kept; a new worker finishes the rest (its start, or the sweep)."""
    texts = _words(300)
    with hearth_worker(stack.env, stack.cwd):
        ids = _add(stack, texts)
        _wait_for(stack, done=len(ids))
    _set_model(stack, SECOND)
    stack.llm.mode, stack.llm.delay = "slow", 0.4  # each batch of 32 takes a while
    with hearth_worker(stack.env, stack.cwd) as worker:
        queued = httpx.post(
            f"{stack.server.url}/documents/reembed", headers=stack.server.headers, timeout=30
        )
        assert queued.json()["queued"] == len(ids)
        _wait_for(stack, done=64)
        _kill(worker)
    frozen = _progress(stack)
    assert 64 <= frozen["done"] < len(ids), frozen
    held = models_of(stack.database)
    assert held == {SECOND: frozen["done"], FIRST: len(ids) - frozen["done"]}  # none dropped

    found = _search(stack, "kalomi")  # a word of the first text: it was re-embedded first
    assert found["pending"] == len(ids) - frozen["done"]
    assert found["results"], found
    reembedded = set(ids[: frozen["done"]])  # the worker takes the oldest first
    assert {hit["id"] for hit in found["results"]} <= reembedded

    stack.llm.mode = "ok"
    with hearth_worker(stack.env, stack.cwd):
        _wait_for(stack, done=len(ids), within=240)
    assert models_of(stack.database) == {SECOND: len(ids)}
    assert _search(stack, texts[250])["results"][0]["id"] == ids[250]


def _kill(worker: WorkerProcess) -> None:
    worker.kill()
    assert worker.process.returncode is not None
