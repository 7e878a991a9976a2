"""An embedding run does batch after batch within its budget, the model's call for the next
under way while the last is stored, and stops claiming when told to stop or when the LLM
fails; whatever way it ends, no document is embedded twice, the run holds no claim, and
what it stored with a model no longer in force is queued again. In-process runs on a
PostgreSQL with pgvector, with the LLM double."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.db.engine import create_engine
from hearth.db.vector import VectorSupport
from hearth.documents import embedding
from hearth.documents.embedding import EMBED_BATCH_SIZE
from hearth.kit.urls import normalize_database_url
from hearth.llm.adapter import LLMUnavailable
from hearth.llm.ollama import OllamaAdapter
from tests.documents.conftest import Seed, seed
from tests.support.fake_llm import SECOND_EMBEDDING_MODEL, FakeLLM, fake_llm

MODEL = "nomic-embed-text"
LONG = 600.0  # a budget no run here reaches: the run ends for another reason


def _texts(count: int) -> list[str]:
    return [f"entry {number} on subject {number % 5}" for number in range(count)]


def _asked(llm: FakeLLM) -> Counter[str]:
    """How often the double was asked to embed each text."""
    return Counter(text for r in llm.received if r.path == "/api/embed" for text in r.body["input"])


def _calls(llm: FakeLLM) -> int:
    return sum(1 for r in llm.received if r.path == "/api/embed")


def _state(url: str) -> tuple[int, int, int]:
    """(embedded, pending, pending with a failure recorded) documents."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(embedded_at), count(*) FILTER (WHERE embedded_at IS NULL), "
            "count(*) FILTER (WHERE embedded_at IS NULL AND error IS NOT NULL) FROM documents"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def _claims_held(url: str) -> int:
    """Advisory locks any session holds on this database (a run's claims)."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
async def engine(vector_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(normalize_database_url(vector_database))
    yield engine
    await engine.dispose()


@pytest.fixture
async def llm() -> AsyncIterator[tuple[FakeLLM, OllamaAdapter]]:
    with fake_llm() as double:
        async with httpx.AsyncClient() as client:
            yield double, OllamaAdapter(double.url, client)


async def test_a_run_embeds_batch_after_batch_within_its_budget(
    vector_database: str, engine: AsyncEngine, llm: tuple[FakeLLM, OllamaAdapter]
) -> None:
    """Without a budget a run embeds one batch; with one, batch after batch until nothing
    is pending, each text sent once, and no claim is left behind."""
    double, adapter = llm
    seed(vector_database, [Seed(text) for text in _texts(100)])
    support = VectorSupport()

    first = await embedding.embed_pending(engine, support, adapter, MODEL, budget_seconds=0)
    assert first == embedding.RunOutcome(embedded=EMBED_BATCH_SIZE, more=True)

    rest = await embedding.embed_pending(engine, support, adapter, MODEL, budget_seconds=LONG)
    assert rest == embedding.RunOutcome(embedded=100 - EMBED_BATCH_SIZE, more=False)
    assert _calls(double) == 4  # 32 + 32 + 32 + 4
    assert _asked(double) == Counter(_texts(100))
    assert _state(vector_database) == (100, 0, 0)
    assert _claims_held(vector_database) == 0


async def test_runs_of_many_batches_at_once_embed_each_document_once(
    vector_database: str, engine: AsyncEngine, llm: tuple[FakeLLM, OllamaAdapter]
) -> None:
    """Three runs at once, each claiming its next batch while it stores the last (two
    workers, or a run queued twice): together every document, none twice."""
    double, adapter = llm
    double.mode, double.delay = "slow", 0.05  # the runs' batches interleave
    seed(vector_database, [Seed(text) for text in _texts(400)])
    support = VectorSupport()
    outcomes = await asyncio.gather(
        *(
            embedding.embed_pending(engine, support, adapter, MODEL, budget_seconds=LONG)
            for _ in range(3)
        )
    )
    assert sum(outcome.embedded for outcome in outcomes) == 400
    assert _asked(double) == Counter(_texts(400))
    assert _state(vector_database) == (400, 0, 0)
    assert _claims_held(vector_database) == 0


async def test_a_stop_request_ends_the_run_after_the_call_in_flight(
    vector_database: str, engine: AsyncEngine, llm: tuple[FakeLLM, OllamaAdapter]
) -> None:
    """Told to stop while the model works on its second batch, a run stores that batch,
    claims no further one, and lets go of everything it claimed."""
    double, adapter = llm
    seed(vector_database, [Seed(text) for text in _texts(200)])

    def stop_requested() -> bool:
        return _calls(double) >= 2  # the worker's SIGTERM, once the second call is sent

    outcome = await embedding.embed_pending(
        engine,
        VectorSupport(),
        adapter,
        MODEL,
        budget_seconds=LONG,
        stop_requested=stop_requested,
    )
    assert outcome == embedding.RunOutcome(embedded=2 * EMBED_BATCH_SIZE, more=True)
    assert _calls(double) == 2
    assert _state(vector_database) == (64, 136, 0)
    assert _claims_held(vector_database) == 0


def _holding(url: str, model: str) -> int:
    """How many documents hold a vector of ``model`` (embedded, or queued again)."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM documents WHERE embedding_model = %s", (model,)
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_model_changed_during_the_run_queues_its_batches_again(
    vector_database: str, engine: AsyncEngine, llm: tuple[FakeLLM, OllamaAdapter]
) -> None:
    """The model in force changes while a run embeds with the old one: once its batches
    are stored they are queued again (keeping their vectors until the new ones are stored);
    a run that finds the model unchanged leaves its batches embedded."""
    double, adapter = llm
    seed(vector_database, [Seed(text) for text in _texts(200)])
    in_force = MODEL

    async def model_in_force() -> str:
        return in_force

    def stop_requested() -> bool:
        return _calls(double) >= 2  # two batches a run

    for _ in range(2):  # the model unchanged, then changed
        await embedding.embed_pending(
            engine,
            VectorSupport(),
            adapter,
            MODEL,
            budget_seconds=LONG,
            model_in_force=model_in_force,
            stop_requested=stop_requested,
        )
        double.received.clear()
        in_force = SECOND_EMBEDDING_MODEL
    assert _state(vector_database) == (64, 136, 0)
    assert _holding(vector_database, MODEL) == 128
    assert _claims_held(vector_database) == 0


@pytest.mark.parametrize("changed", [False, True])
async def test_an_llm_failing_mid_run_is_recorded_on_its_batch(
    vector_database: str,
    engine: AsyncEngine,
    llm: tuple[FakeLLM, OllamaAdapter],
    changed: bool,  # noqa: FBT001 (the parameter)
) -> None:
    """The model fails on the run's second batch: the first stays stored (queued again if
    the model in force changed meanwhile: a run that fails is checked too), the failure is
    recorded on the second, the rest are untouched, and the run raises for its retry."""
    double, adapter = llm
    seed(vector_database, [Seed(text) for text in _texts(100)])

    def stop_requested() -> bool:
        if _calls(double) >= 1:
            double.mode = "error"  # from the second call on
        return False

    async def model_in_force() -> str:
        return SECOND_EMBEDDING_MODEL if changed else MODEL

    with pytest.raises(LLMUnavailable):
        await embedding.embed_pending(
            engine,
            VectorSupport(),
            adapter,
            MODEL,
            budget_seconds=LONG,
            model_in_force=model_in_force,
            stop_requested=stop_requested,
        )
    assert _state(vector_database) == ((0, 100, 32) if changed else (32, 68, 32))
    assert _holding(vector_database, MODEL) == 32
    assert _claims_held(vector_database) == 0
