"""Documents: stored through the API, embedded by a real worker, found by pgvector search.

The end-to-end test runs on embedded PostgreSQL 18 with pgvector (real `hearth serve` and
`hearth worker` processes, the embedded queue); the others run on the suite's PostgreSQL,
which has no pgvector, and show what Hearth does there.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from hearth.config.settings import Settings
from hearth.db.embedded import EmbeddedPostgres
from hearth.db.engine import create_engine
from hearth.documents import repository
from hearth.documents.embedding import EMBED_MAX_CHARS
from hearth.documents.schemas import MAX_BATCH, MAX_METADATA_BYTES
from hearth.documents.service import EMBED_TASK
from hearth.kit.urls import normalize_database_url
from hearth.worker import app as worker_app
from hearth.worker.dependencies import get_queue
from hearth.worker.queue import PendingTask, QueueUnavailable, TaskQueue
from tests.support.app import ClientFor
from tests.support.fake_llm import FakeLLM, fake_embedding, fake_llm
from tests.support.mcp import TOKEN as MCP_TOKEN
from tests.support.mcp import mcp_client, structured
from tests.support.process import TEST_SECRET_KEY, HearthServer, clean_environment, hearth_server
from tests.support.services import free_port
from tests.support.tokens import bearer, create_with_cli
from tests.support.worker import hearth_worker

# embedded_stack: `hearth serve` and `hearth worker` on embedded PostgreSQL.
FIXTURE_NEEDS = {"embedded_stack": ("embedded_postgres", "worker")}


async def test_documents_are_kept_on_postgresql_without_pgvector(
    client_for: ClientFor, api_token: str
) -> None:
    """Hearth runs on any PostgreSQL: documents are stored, and search says what it lacks."""
    async with client_for() as client:
        client.headers.update(bearer(api_token))
        added = await client.post(
            "/documents",
            json={"text": "The boiler is serviced each October.", "metadata": {"room": "cellar"}},
        )
        assert added.status_code == 202, added.text
        [document_id] = added.json()["ids"]

        stored = (await client.get(f"/documents/{document_id}")).json()
        assert stored["text"] == "The boiler is serviced each October."
        assert stored["metadata"] == {"room": "cellar"}
        assert stored["status"] == "pending"

        search = await client.get("/documents/search", params={"q": "boiler"})
        assert search.status_code == 503
        assert "pgvector" in search.json()["detail"]


async def test_a_batch_gets_its_ids_in_its_order(client_for: ClientFor, api_token: str) -> None:
    """Each id of ``POST /documents/batch`` names the document at the same place in the
    batch, with other batches stored at the same time; unicode, quotes, backslashes and
    what ``COPY`` reads specially (tabs, line ends, a backslash and N) in text and metadata arrive
    as sent."""
    async with client_for() as client:
        client.headers.update(bearer(api_token))
        batches = [
            [
                {
                    "text": f'batch {b} doc {n} "quoted" \\ back, été, 水\t\\N\r\n\\.',
                    "metadata": {"n": [b, n], "s": "\\N\ttab\nline \\."},
                }
                for n in range(MAX_BATCH)
            ]
            for b in range(4)
        ]
        answers = await asyncio.gather(
            *(client.post("/documents/batch", json={"documents": batch}) for batch in batches)
        )
        for batch, answer in zip(batches, answers, strict=True):
            assert answer.status_code == 202, answer.text
            ids = answer.json()["ids"]
            assert len(set(ids)) == len(batch)
            for document_id, sent in list(zip(ids, batch, strict=True))[:: MAX_BATCH // 10]:
                stored = (await client.get(f"/documents/{document_id}")).json()
                assert (stored["text"], stored["metadata"]) == (sent["text"], sent["metadata"])


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("post", "/documents", {"text": "   "}, 422, "blank"),
        ("post", "/documents", {}, 422, "text"),
        ("post", "/documents", {"text": "x", "metadata": ["not", "an", "object"]}, 422, "metadata"),
        (
            "post",
            "/documents",
            {"text": "x", "metadata": {"big": "y" * MAX_METADATA_BYTES}},
            422,
            "larger",
        ),
        ("post", "/documents/batch", {"documents": []}, 422, "documents"),
        (
            "post",
            "/documents/batch",
            {"documents": [{"text": "x"}] * (MAX_BATCH + 1)},
            422,
            "documents",
        ),
        ("get", "/documents/search?q=", None, 422, "q"),
        ("get", "/documents/search?q=boiler&k=0", None, 422, "k"),
        ("get", "/documents/search?q=boiler&k=51", None, 422, "k"),
        ("get", "/documents/not-a-number", None, 422, "document_id"),
        ("get", "/documents/987654321", None, 404, "987654321"),
        # What PostgreSQL cannot hold is refused before it gets there, never a 500.
        ("get", "/documents/2147483648", None, 422, "document_id"),
        ("get", "/documents/0", None, 422, "document_id"),
        ("post", "/documents", {"text": "a\x00b"}, 422, "NUL"),
        ("post", "/documents", {"text": "x", "metadata": {"k": "a\x00b"}}, 422, "NUL"),
        ("post", "/documents", {"text": "x", "metadata": {"a\x00": 1}}, 422, "NUL"),
        # JSON's "\ud800" reads as a lone surrogate, which no UTF-8 text (nor jsonb) holds.
        ("post", "/documents", rb'{"text": "a\ud800b"}', 422, "unicode"),
        ("post", "/documents", rb'{"text": "x", "metadata": {"k": "a\udc00"}}', 422, "surrogate"),
        ("post", "/documents", rb'{"text": "x", "metadata": {"a\ud800": 1}}', 422, "surrogate"),
        (
            "post",
            "/documents/batch",
            rb'{"documents": [{"text": "fine"}, {"text": "x", "metadata": {"k": ["\udfff"]}}]}',
            422,
            "surrogate",
        ),
        (
            "post",
            "/documents/batch",
            {"documents": [{"text": "fine"}, {"text": "a\x00b"}]},
            422,
            "NUL",
        ),
    ],
)
async def test_bad_requests_are_refused_with_the_reason(
    client_for: ClientFor,
    api_token: str,
    method: str,
    path: str,
    body: Any,
    status: int,
    words: str,
) -> None:
    async with client_for() as client:
        client.headers.update(bearer(api_token))
        if isinstance(body, bytes):  # JSON that Python's own encoder would not write
            response = await client.request(
                method, path, content=body, headers={"content-type": "application/json"}
            )
        else:
            response = await client.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert words in response.text


async def test_numbers_json_cannot_hold_are_refused(client_for: ClientFor, api_token: str) -> None:
    """1e400 reads as Infinity, and NaN is not JSON: 422 naming the field, nothing stored."""
    async with client_for() as client:
        client.headers.update(bearer(api_token))
        for number in (b"1e400", b"-1e400", b"NaN", b"Infinity"):
            body = b'{"text": "x", "metadata": {"reading": ' + number + b"}}"
            response = await client.post(
                "/documents", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 422, (number, response.text)
            assert response.json()["errors"][0]["field"] == "body.metadata"
            assert "NaN or Infinity" in response.json()["errors"][0]["message"]


async def test_documents_are_kept_when_the_queue_is_down(
    client_for: ClientFor, api_token: str, engine: AsyncEngine
) -> None:
    """The broker away: the embedding task is sent only once the document is committed (a
    worker would see it), and the failed send leaves the answer true, 202 stored (a 503
    would invite a duplicate); the worker's sweep embeds the document later."""
    text = f"Router rebooting {uuid.uuid4().hex}."
    sent: list[tuple[str, int]] = []  # the task, and the rows a worker would see then

    class BrokerDown(TaskQueue):
        async def send(self, task: PendingTask) -> None:
            async with engine.connect() as connection:  # what a worker would see now
                query = sa.text("SELECT count(*) FROM documents WHERE text = :t")
                sent.append((task.name, await connection.scalar(query, {"t": text}) or 0))
            raise QueueUnavailable("The task queue is unavailable.", reason="broker down")

    queue = BrokerDown(None)
    async with client_for() as client:
        client.headers.update(bearer(api_token))
        app = client._transport.app  # type: ignore[attr-defined]
        app.dependency_overrides[get_queue] = lambda: queue
        added = await client.post("/documents", json={"text": text})
        assert added.status_code == 202, added.text
        assert added.json()["status"] == "pending"
        assert "Stored" in added.json()["detail"]
        [document_id] = added.json()["ids"]
        await queue.flush()  # the answer does not wait for the send
        assert (await client.get(f"/documents/{document_id}")).json()["status"] == "pending"
    assert sent == [("hearth.embed_documents", 1)]


def test_embedding_runs_have_their_queue_and_their_sweep() -> None:
    """The worker package names the task as text (it imports no concern): the same name."""
    assert worker_app.EMBED_TASK == EMBED_TASK
    routes = {"hearth.embed_documents": {"queue": worker_app.EMBEDDING_QUEUE}}
    settings = Settings(secret_key=TEST_SECRET_KEY, embedding_sweep_seconds=7)
    app = worker_app.create_celery(settings, "postgresql+psycopg://hearth@127.0.0.1/hearth")
    assert app.conf.task_routes == routes
    sweep = app.conf.beat_schedule["embedding-sweep"]
    assert (sweep["task"], sweep["schedule"]) == (EMBED_TASK, 7)
    assert sweep["kwargs"] == {"periodic": True}


# Three words each, from a made-up vocabulary: texts that share no word are far apart under
# the fake server's bag-of-words embedding, so each text has a clear nearest neighbour.
def _texts(count: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "ze"]
    words = [a + b + c for a in syllables for b in syllables for c in syllables]
    return [" ".join(words[3 * i : 3 * i + 3]) for i in range(count)]


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    return dot / norm


def _wait_until_embedded(server: HearthServer, ids: list[int], within: float = 180) -> None:
    deadline = time.monotonic() + within
    remaining = list(ids)
    while remaining and time.monotonic() < deadline:
        remaining = [
            i for i in remaining if server.get(f"/documents/{i}").json()["status"] != "embedded"
        ]
        if remaining:
            time.sleep(0.5)
    assert not remaining, f"{len(remaining)} documents not embedded, e.g. {remaining[:5]}"


@pytest.fixture
def embedded_stack(tmp_path: Path) -> Iterator[tuple[HearthServer, FakeLLM, Path]]:
    """`hearth serve` and `hearth worker` on embedded PostgreSQL (queue included), with an
    Ollama double for embeddings."""
    data = tmp_path / "data"
    with fake_llm() as llm:
        env = clean_environment(
            HEARTH_DATA_DIR=str(data),
            LLM_PROVIDER="ollama",
            LLM_ENDPOINT=llm.url,
            EMBEDDING_MODEL="nomic-embed-text",
            MCP_TOKEN=MCP_TOKEN,
        )
        with hearth_server(env, tmp_path, free_port()) as server:
            server.wait_until("/readyz", 200)
            # Beside the running server, on its embedded database, as `make run` users do.
            token = create_with_cli(env, tmp_path, "read", "write")
            server.headers["Authorization"] = f"Bearer {token}"
            with hearth_worker(env, tmp_path):
                yield server, llm, data


async def test_documents_end_to_end_on_embedded_postgresql(
    embedded_stack: tuple[HearthServer, FakeLLM, Path],
) -> None:
    """200 texts in through the API; the worker embeds them in batches; search finds the
    nearest neighbour that brute force finds, using the HNSW index; the MCP tools find the
    same and add to the same store; a text longer than the model's context is cut."""
    server, llm, data = embedded_stack
    texts = _texts(200)
    ids = _add_one_by_one_then_in_a_batch(server, texts)
    _wait_until_embedded(server, ids)
    batches = [len(r.body["input"]) for r in llm.received if r.path == "/api/embed"]
    assert len(batches) < 200, "the worker should embed in batches, not one by one"
    assert max(batches) > 1

    # A query sharing two of text 137's three words, plus words no text has.
    target = texts[137].split()
    query = f"where is {target[0]} and {target[2]}"
    found = _search_as_brute_force_would(server, query, texts, ids)
    assert found["results"][0]["id"] == ids[137]  # the made-up vocabulary does what it should

    await _mcp_finds_the_same_and_adds_to_the_same_store(server, query, found)
    plan = await _plan_of_the_repository_search(data, fake_embedding(query), ids[137])
    assert "ix_documents_embedding_64" in plan, plan

    assert _longest_text_the_model_sees(server, llm, "kalomi " * 3000) == EMBED_MAX_CHARS


def _longest_text_the_model_sees(server: HearthServer, llm: FakeLLM, text: str) -> int:
    """Add ``text``, longer than an embedding model's context; the model sees its beginning."""
    added = httpx.post(
        f"{server.url}/documents", json={"text": text}, headers=server.headers, timeout=10
    )
    _wait_until_embedded(server, added.json()["ids"], within=60)
    return max(
        len(sent) for r in llm.received if r.path == "/api/embed" for sent in r.body["input"]
    )


def _add_one_by_one_then_in_a_batch(server: HearthServer, texts: list[str]) -> list[int]:
    """The first half one at a time, as a client adding notes would; the rest in a batch."""
    half = len(texts) // 2
    ids = []
    for body in texts[:half]:
        response = httpx.post(
            f"{server.url}/documents", json={"text": body}, headers=server.headers, timeout=10
        )
        assert response.status_code == 202, response.text
        ids += response.json()["ids"]
    batch = {"documents": [{"text": t, "metadata": {"n": i}} for i, t in enumerate(texts[half:])]}
    response = httpx.post(
        f"{server.url}/documents/batch", json=batch, headers=server.headers, timeout=10
    )
    assert response.status_code == 202, response.text
    ids += response.json()["ids"]
    assert len(set(ids)) == len(texts)
    return ids


def _search_as_brute_force_would(
    server: HearthServer, query: str, texts: list[str], ids: list[int]
) -> dict[str, Any]:
    """GET /documents/search, checked against the cosine of every text to the query."""
    vector = fake_embedding(query)
    by_score = sorted(
        range(len(texts)), key=lambda i: _cosine(vector, fake_embedding(texts[i])), reverse=True
    )
    response = httpx.get(
        f"{server.url}/documents/search",
        params={"q": query, "k": 5},
        headers=server.headers,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    assert found["model"] == "nomic-embed-text"
    assert found["pending"] == 0
    assert found["results"][0]["id"] == ids[by_score[0]]
    for hit in found["results"]:
        assert hit["text"] == texts[ids.index(hit["id"])]
        assert hit["score"] == pytest.approx(_cosine(vector, fake_embedding(hit["text"])), abs=1e-5)
    scores = [hit["score"] for hit in found["results"]]
    assert scores == sorted(scores, reverse=True)
    return found


async def _mcp_finds_the_same_and_adds_to_the_same_store(
    server: HearthServer, query: str, found: dict[str, Any]
) -> None:
    async with mcp_client(server) as client:
        through_mcp = structured(
            await client.call_tool("search_documents", {"query": query, "k": 5})
        )
        assert through_mcp["results"] == found["results"]
        added = structured(
            await client.call_tool("add_document", {"document": {"text": "zezeze vuvuvu"}})
        )
        _wait_until_embedded(server, added["ids"], within=60)
        again = structured(await client.call_tool("search_documents", {"query": "vuvuvu"}))
        assert again["results"][0]["id"] == added["ids"][0]


async def _plan_of_the_repository_search(data: Path, query: list[float], nearest_id: int) -> str:
    """EXPLAIN of the search statement ``repository.nearest`` sends, with its parameters,
    after the search, in the same transaction: with the settings the search set."""
    url = EmbeddedPostgres(data).running_url()
    assert url is not None
    engine = create_engine(normalize_database_url(url))
    _count_and_settings, statement = repository.search_statements(len(query))
    parameters = {"query": repository.vector_literal(query), "model": "nomic-embed-text", "k": 5}
    try:
        async with engine.connect() as connection:
            session = AsyncSession(bind=connection)
            rows = (await repository.nearest(session, query, "nomic-embed-text", 5)).rows
            assert rows[0].id == nearest_id
            plan = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            return "\n".join(plan.scalars())
    finally:
        await engine.dispose()


def test_search_answers_503_while_the_llm_is_away_and_recovers(
    embedded_stack: tuple[HearthServer, FakeLLM, Path],
) -> None:
    """Degraded, not broken: with the LLM failing, documents are still taken in and search
    says why it cannot run; once the LLM is back the worker's retry embeds what waited."""
    server, llm, _ = embedded_stack
    llm.mode = "error"
    added = httpx.post(
        f"{server.url}/documents",
        json={"text": "kalomi nupera"},
        headers=server.headers,
        timeout=10,
    )
    assert added.status_code == 202, added.text
    [document_id] = added.json()["ids"]

    search = httpx.get(
        f"{server.url}/documents/search", params={"q": "kalomi"}, headers=server.headers, timeout=10
    )
    assert search.status_code == 503
    assert "500" in search.json()["detail"]  # the LLM server's answer, in one line

    llm.mode = "infinite"  # a vector pgvector cannot hold is the model's fault, not a 500
    search = httpx.get(
        f"{server.url}/documents/search", params={"q": "kalomi"}, headers=server.headers, timeout=10
    )
    assert search.status_code == 503
    assert "not a list of finite numbers" in search.json()["detail"]
    llm.mode = "huge"  # finite, but beyond the 32-bit floats pgvector stores
    search = httpx.get(
        f"{server.url}/documents/search", params={"q": "kalomi"}, headers=server.headers, timeout=10
    )
    assert search.status_code == 503
    assert "beyond" in search.json()["detail"]

    deadline = time.monotonic() + 30
    document: dict[str, Any] = {}
    while time.monotonic() < deadline and not document.get("error"):
        document = server.get(f"/documents/{document_id}").json()
        time.sleep(0.3)
    assert document["status"] == "pending"
    assert document["error"], "the failed attempt's reason is recorded on the document"

    llm.mode = "ok"
    _wait_until_embedded(server, [document_id], within=60)  # a retry, or the sweep
    assert server.get(f"/documents/{document_id}").json()["error"] is None
    search = httpx.get(
        f"{server.url}/documents/search", params={"q": "kalomi"}, headers=server.headers, timeout=10
    )
    assert search.status_code == 200
    assert search.json()["results"][0]["id"] == document_id
