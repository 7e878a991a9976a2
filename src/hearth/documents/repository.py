"""All of the documents' SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from pgvector.sqlalchemy import Vector
from sqlalchemy import Row, Table, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from hearth.models import Document

_table = cast("Table", Document.__table__)
# Every column but the vector, which may not exist (a server without pgvector).
_COLUMNS = (
    Document.id,
    Document.text,
    Document.meta,
    Document.embedding_model,
    Document.embedded_at,
    Document.error,
    Document.created_at,
)


async def insert_documents(
    session: AsyncSession, items: Sequence[tuple[str, dict[str, Any]]]
) -> list[int]:
    """Store ``(text, metadata)`` pairs, not yet embedded; their ids in order."""
    result = await session.execute(
        insert(Document).returning(Document.id, sort_by_parameter_order=True),
        [{"text": body, "meta": metadata} for body, metadata in items],
    )
    return list(result.scalars())


async def get(session: AsyncSession, document_id: int) -> Row[Any] | None:
    """One document's columns, its vector left out; None if there is no such document."""
    return (await session.execute(select(*_COLUMNS).where(Document.id == document_id))).first()


async def count_pending(session: AsyncSession) -> int:
    """How many documents wait to be embedded."""
    statement = select(func.count()).select_from(Document).where(Document.embedded_at.is_(None))
    return int((await session.execute(statement)).scalar_one())


async def nearest(
    session: AsyncSession, query: list[float], model: str, k: int
) -> Sequence[Row[Any]]:
    """The ``k`` documents embedded by ``model`` closest to ``query`` (cosine), with scores.

    The expression and the predicate spell the vector size as literals, so PostgreSQL can
    use that size's partial HNSW index (hearth.db.vector.ensure_index).
    """
    size = len(query)
    vector = f"embedding::vector({size})"
    await session.execute(
        # More candidates than the default 40 when more results are asked for; keep
        # scanning past documents of other models (pgvector ≥ 0.8; ignored before).
        text(
            "SELECT set_config('hnsw.ef_search', :ef, true), "
            "set_config('hnsw.iterative_scan', 'strict_order', true)"
        ),
        {"ef": str(max(40, 2 * k))},
    )
    # The size is an int, not user text; every value is a bound parameter.
    statement = text(
        f"SELECT id, text, metadata, 1 - ({vector} <=> CAST(:query AS vector({size}))) AS score "  # noqa: S608 (ints and bound parameters only)
        f"FROM documents WHERE embedding_dim = {size} AND embedding_model = :model "
        f"ORDER BY {vector} <=> CAST(:query AS vector({size})) LIMIT :k"
    )
    result = await session.execute(
        statement, {"query": vector_literal(query), "model": model, "k": k}
    )
    return result.all()


def vector_literal(values: Sequence[float]) -> str:
    """The text form pgvector reads, ``[1.0,2.5]``."""
    return "[" + ",".join(repr(float(value)) for value in values) + "]"


# pg_try_advisory_lock key held by the one embedding run in flight: "hearthem" in ASCII.
EMBEDDING_LOCK_ID = 0x686561727468656D


async def try_lock_embedding(connection: AsyncConnection) -> bool:
    """Take the embedding run's lock for this connection's session; False when another
    session holds it. PostgreSQL drops it when the session ends, however that happens."""
    statement = text("SELECT pg_try_advisory_lock(:id)")
    return bool(await connection.scalar(statement, {"id": EMBEDDING_LOCK_ID}))


async def unlock_embedding(connection: AsyncConnection) -> None:
    """Give the embedding run's lock back, if this session holds it."""
    await connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": EMBEDDING_LOCK_ID})


async def next_pending(connection: AsyncConnection, limit: int) -> Sequence[Any]:
    """The ``limit`` oldest documents waiting to be embedded (no row lock: the caller
    holds the embedding lock, and the store only fills what is still empty)."""
    statement = (
        select(Document.id, Document.text)
        .where(Document.embedded_at.is_(None))
        .order_by(Document.id)
        .limit(limit)
    )
    return (await connection.execute(statement)).all()


async def has_pending(connection: AsyncConnection) -> bool:
    """Whether any document waits to be embedded."""
    statement = select(select(Document.id).where(Document.embedded_at.is_(None)).exists())
    return bool(await connection.scalar(statement))


async def store_embeddings(
    connection: AsyncConnection, ids: Sequence[int], vectors: Sequence[list[float]], model: str
) -> None:
    """Store each document's vector, its size and the model, and clear any failure; a
    document embedded meanwhile keeps what it has, so a store repeated after a lost
    connection changes nothing."""
    statement = (
        update(_table)
        .where(_table.c.id == bindparam("document_id"), _table.c.embedded_at.is_(None))
        .values(
            embedding=bindparam("vector", type_=Vector()),
            embedding_model=model,
            embedding_dim=bindparam("size"),
            embedded_at=func.now(),
            error=None,
        )
    )
    await connection.execute(
        statement,
        [
            {"document_id": document_id, "vector": vector, "size": len(vector)}
            for document_id, vector in zip(ids, vectors, strict=True)
        ],
    )


async def record_failure(connection: AsyncConnection, ids: Sequence[int], reason: str) -> None:
    """Record why embedding ``ids`` failed; they stay pending."""
    await connection.execute(update(_table).where(_table.c.id.in_(ids)).values(error=reason))
