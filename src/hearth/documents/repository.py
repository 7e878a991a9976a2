"""All of the documents' SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

from psycopg import AsyncConnection as AsyncDriverConnection
from psycopg import Connection as DriverConnection
from sqlalchemy import Row, Table, case, func, select, text, update
from sqlalchemy import delete as sa_delete
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from hearth import traces
from hearth.models import Document
from hearth.models.document import EMBEDDING_KEY

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


# Ids for a batch, taken from the identity's sequence in the batch's order.
_NEXT_IDS = "SELECT nextval(pg_get_serial_sequence('documents', 'id')) FROM generate_series(1, %s)"
_COPY_ROWS = "COPY documents (id, text, metadata) FROM STDIN"


async def _driver(session: AsyncSession) -> AsyncDriverConnection[Any]:
    """The psycopg connection under the session's, in the session's transaction: for what
    SQLAlchemy does not offer (``COPY``, pipelined statements)."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is None:  # the session's connection is open: it has a driver connection
        raise RuntimeError("the session's connection has no driver connection")
    return cast("AsyncDriverConnection[Any]", driver)


async def insert_documents(session: AsyncSession, items: Sequence[tuple[str, str]]) -> list[int]:
    """Store ``(text, metadata as JSON)`` pairs, not yet embedded; their ids, in order.

    The rows go in by ``COPY``, in the session's transaction, as a bulk load does: the
    driver writes them in C and PostgreSQL parses no SQL per row. An ``INSERT … RETURNING``
    of the same batch, even as one JSON array, had the api process encode every text again
    and PostgreSQL parse it. ``COPY`` returns nothing, so the ids are drawn from
    the identity's sequence first, in the batch's order: increasing, as ``INSERT`` would
    hand them out."""
    driver = await _driver(session)
    with traces.driver_statements((_NEXT_IDS, _COPY_ROWS), driver.info.dbname):
        async with driver.cursor() as cursor:
            await cursor.execute(_NEXT_IDS, (len(items),))
            ids = [int(row[0]) for row in await cursor.fetchall()]
            async with cursor.copy(_COPY_ROWS) as copy:
                for document_id, (body, metadata) in zip(ids, items, strict=True):
                    await copy.write_row((document_id, body, metadata))
    return ids


async def get(session: AsyncSession, document_id: int) -> Row[Any] | None:
    """One document's columns, its vector left out; None if there is no such document."""
    return (await session.execute(select(*_COLUMNS).where(Document.id == document_id))).first()


async def count_pending(session: AsyncSession) -> int:
    """How many documents wait to be embedded."""
    statement = select(func.count()).select_from(Document).where(Document.embedded_at.is_(None))
    return int((await session.execute(statement)).scalar_one())


class Found(NamedTuple):
    """A document a search found, and how near it is (1 the same direction, -1 opposite)."""

    id: int
    text: str
    metadata: dict[str, Any]
    score: float


class Nearest(NamedTuple):
    """What a search found, best first, and how many documents it could not see."""

    rows: list[Found]
    unsearchable: int


async def nearest(session: AsyncSession, query: list[float], model: str, k: int) -> Nearest:
    """The ``k`` documents embedded by ``model`` closest to ``query`` (cosine), with scores,
    and how many documents the search does not see: those without a vector of that model
    and size (not embedded yet, or by another model).

    Two statements, sent together in one round trip (psycopg's pipeline mode, on the
    session's connection and in its transaction): the first sets the scan's settings for
    this transaction and counts what the search cannot see, the second searches. The
    expression and the predicate spell the vector size as literals, so PostgreSQL can use
    that size's partial HNSW index (hearth.db.vector.ensure_index).

    "Another key than this search's" is spelled as what ``ix_documents_embedding_key`` can
    answer (no key, a smaller one, a larger one): the count reads the documents the search
    cannot see, not every document.
    """
    size = len(query)
    count_and_settings, search = search_statements(size)
    driver = await _driver(session)
    with traces.driver_statements((count_and_settings, search), driver.info.dbname):
        async with driver.pipeline():
            counted = await driver.execute(
                count_and_settings, {"ef": str(ef_search(k)), "key": f"{model}/{size}"}
            )
            found = await driver.execute(
                search, {"query": vector_literal(query), "model": model, "k": k}
            )
    [unsearchable, *_settings] = await counted.fetchone() or (0,)
    rows = [Found(*row) for row in await found.fetchall()]
    return Nearest(rows, int(unsearchable or 0))


def search_statements(size: int) -> tuple[str, str]:
    """The two statements of a search among vectors of ``size`` (``nearest``), in psycopg's
    ``%(name)s`` style: the count and settings (``key``, ``ef``), then the search
    (``query``, ``model``, ``k``)."""
    key = EMBEDDING_KEY
    # More candidates than pgvector's default 40 (see ef_search); keep scanning past
    # documents of other models (pgvector ≥ 0.8; ignored before).
    count_and_settings = (
        f"SELECT (SELECT count(*) FROM documents WHERE {key} IS NULL OR {key} < %(key)s "  # noqa: S608 (a constant expression; the key is a bound parameter)
        f"OR {key} > %(key)s), set_config('hnsw.ef_search', %(ef)s, true), "
        "set_config('hnsw.iterative_scan', 'strict_order', true)"
    )
    vector = f"embedding::vector({size})"
    # The size is an int, not user text; every value is a bound parameter.
    search = (
        f"SELECT id, text, metadata, 1 - ({vector} <=> %(query)s::vector({size})) AS score "  # noqa: S608 (ints and bound parameters only)
        f"FROM documents WHERE embedding_dim = {size} AND embedding_model = %(model)s "
        f"ORDER BY {vector} <=> %(query)s::vector({size}) LIMIT %(k)s"
    )
    return count_and_settings, search


# The HNSW candidate list a search scans. pgvector's default, 40, found 81 % of the true
# ten nearest among 100 000 documents of 384 dimensions (python -m bench.documents), 200
# found 91 %, 400 found 99 % at about 2 ms a query: a search that misses one result in five
# is not worth the millisecond saved.
EF_SEARCH = 400


def ef_search(k: int) -> int:
    """The HNSW candidate list a search for ``k`` results scans (``hnsw.ef_search``)."""
    return max(EF_SEARCH, 2 * k)


def vector_literal(values: Sequence[float]) -> str:
    """The text form pgvector reads, ``[1.0,2.5]``: JSON's, written by its C encoder (a
    batch holds thousands of numbers)."""
    return json.dumps([float(value) for value in values], separators=(",", ":"))


# The first key of the two-key session advisory lock a run holds on each document it
# embeds (the second is the document's id): "hearth-docs" hashed to an int4.
CLAIM_NAMESPACE = 0x68646F63
# Pending documents a claim looks at, oldest first, to find a batch no other run holds.
CLAIM_SCAN = 16


async def claim_pending(
    connection: AsyncConnection, limit: int, held: Sequence[int] = ()
) -> Sequence[Any]:
    """Claim the ``limit`` oldest pending documents no other run has claimed: a session
    advisory lock on each, held until ``release_claims`` or the session's end (however it
    ends), so no transaction stays open while the model works and nothing waits on a
    claimed row. Their ids and texts, read again after the locks were taken: a document a
    run stored and released meanwhile is not claimed again.

    ``held``: pending documents this session claimed already, left out (a session takes
    its own advisory locks again: they would be claimed twice)."""
    scan = limit * CLAIM_SCAN
    # The candidates are limited before any lock is tried, so the filter cannot lock the
    # whole backlog whichever plan PostgreSQL picks; the outer LIMIT stops at ``limit``.
    locked = await connection.execute(
        text(
            "SELECT id FROM (SELECT id FROM documents WHERE embedded_at IS NULL "
            "AND id <> ALL(CAST(:held AS int[])) ORDER BY id LIMIT :scan) AS candidates "
            "WHERE pg_try_advisory_lock(:namespace, id) LIMIT :limit"
        ),
        {"scan": scan, "namespace": CLAIM_NAMESPACE, "limit": limit, "held": list(held)},
    )
    ids = list(locked.scalars())
    if not ids:
        return []
    # A new statement, a new snapshot: a store committed before its run let go shows here.
    statement = (
        select(Document.id, Document.text)
        .where(Document.id.in_(ids), Document.embedded_at.is_(None))
        .order_by(Document.id)
    )
    rows = (await connection.execute(statement)).all()
    stale = set(ids) - {row.id for row in rows}
    if stale:
        await release_claims(connection, sorted(stale))
    return rows


async def reclaim(connection: AsyncConnection, ids: Sequence[int]) -> None:
    """Take again, where no other run has meanwhile, the claims of ``ids`` (a session that
    held them was lost)."""
    await connection.execute(
        text("SELECT pg_try_advisory_lock(:namespace, id) FROM unnest(CAST(:ids AS int[])) AS id"),
        {"namespace": CLAIM_NAMESPACE, "ids": list(ids)},
    )


async def release_claims(connection: AsyncConnection, ids: Sequence[int] | None = None) -> None:
    """Give back this session's claims on ``ids``, or every claim (and any other advisory
    lock of this session) when ``ids`` is None."""
    if ids is None:
        await connection.execute(text("SELECT pg_advisory_unlock_all()"))
        return
    await connection.execute(
        text("SELECT pg_advisory_unlock(:namespace, id) FROM unnest(CAST(:ids AS int[])) AS id"),
        {"namespace": CLAIM_NAMESPACE, "ids": list(ids)},
    )


# Whether any document waits to be embedded (``ix_documents_pending`` answers it); as text,
# so that a psycopg connection of its own can ask it too.
_ANY_PENDING = "SELECT EXISTS (SELECT 1 FROM documents WHERE embedded_at IS NULL)"


async def has_pending(connection: AsyncConnection) -> bool:
    """Whether any document waits to be embedded."""
    return bool(await connection.scalar(text(_ANY_PENDING)))


def has_pending_driver(connection: DriverConnection[Any]) -> bool:
    """``has_pending``, on a psycopg connection of its own: the worker's main process asks
    it before it sends a run, without building an engine for one question."""
    row = connection.execute(_ANY_PENDING).fetchone()
    return bool(row and row[0])


class VectorText(NamedTuple):
    """A vector in the text form pgvector reads (``vector_literal``), and its size."""

    text: str
    size: int


def vector_text(values: Sequence[float]) -> VectorText:
    """``values`` as ``store_embeddings`` takes them."""
    return VectorText(vector_literal(values), len(values))


async def store_embeddings(
    connection: AsyncConnection, ids: Sequence[int], vectors: Sequence[VectorText], model: str
) -> None:
    """Store each document's vector, its size and the model, and clear any failure; a
    document embedded meanwhile keeps what it has, so a store repeated after a lost
    connection changes nothing. One statement for the batch, the vectors as arrays of their
    text, written by the caller beforehand (``vector_text``: milliseconds for a batch, which
    the worker spends while PostgreSQL stores the batch before, not while it waits)."""
    statement = text(
        "UPDATE documents AS d SET embedding = CAST(v.vector AS vector), "
        "embedding_model = :model, embedding_dim = v.size, embedded_at = now(), error = NULL "
        "FROM unnest(CAST(:ids AS int[]), CAST(:vectors AS text[]), CAST(:sizes AS int[])) "
        "AS v(id, vector, size) WHERE d.id = v.id AND d.embedded_at IS NULL"
    )
    await connection.execute(
        statement,
        {
            "model": model,
            "ids": list(ids),
            "vectors": [vector.text for vector in vectors],
            "sizes": [vector.size for vector in vectors],
        },
    )


async def record_failure(connection: AsyncConnection, ids: Sequence[int], reason: str) -> None:
    """Record why embedding ``ids`` failed; they stay pending."""
    await connection.execute(update(_table).where(_table.c.id.in_(ids)).values(error=reason))


# The console's view. No status column: a document's status follows from ``embedded_at``
# and ``error``, which the worker already writes in one statement; a third column could
# disagree with them. Counting is one pass over the table (docs/documents.md has the
# figures); the failures and the re-embedding's progress read the pending rows through
# ``ix_documents_pending``.
_STATUS = case(
    (Document.embedded_at.is_not(None), "embedded"),
    (Document.error.is_not(None), "failed"),
    else_="pending",
)


async def status_counts(session: AsyncSession) -> list[tuple[str, str | None, int]]:
    """``(status, embedding_model, count)`` rows: status is embedded, pending (not embedded
    yet) or failed (not embedded, the last attempt's reason kept); the model is the one
    whose vector the document holds, if any (a document queued again keeps its old one)."""
    status = _STATUS.label("status")
    statement = (
        select(status, Document.embedding_model, func.count().label("count"))
        .group_by(status, Document.embedding_model)
        .order_by(status, Document.embedding_model)
    )
    rows = (await session.execute(statement)).all()
    return [(str(row[0]), row[1], int(row[2])) for row in rows]


async def failures(session: AsyncSession, limit: int) -> Sequence[Row[Any]]:
    """The oldest ``limit`` documents whose last embedding attempt failed, with the reason."""
    statement = (
        select(Document.id, func.left(Document.text, 120).label("excerpt"), Document.error)
        .where(Document.embedded_at.is_(None), Document.error.is_not(None))
        .order_by(Document.id)
        .limit(limit)
    )
    return (await session.execute(statement)).all()


async def delete(session: AsyncSession, document_id: int) -> bool:
    """Delete a document, its vector with it; whether there was one."""
    statement = sa_delete(Document).where(Document.id == document_id).returning(Document.id)
    return (await session.execute(statement)).first() is not None


async def progress(
    connection: AsyncConnection | AsyncSession, model: str
) -> tuple[int, int, int, int]:
    """``(done, total, waiting, failed)``: documents embedded by ``model``, all documents,
    those waiting for the worker, and those of them whose last attempt failed."""
    pending = Document.embedded_at.is_(None)
    statement = select(
        func.count().filter(Document.embedded_at.is_not(None), Document.embedding_model == model),
        func.count(),
        func.count().filter(pending),
        func.count().filter(pending, Document.error.is_not(None)),
    )
    done, total, waiting, failed = (await connection.execute(statement)).one()
    return int(done), int(total), int(waiting), int(failed)


async def requeue_batch(
    connection: AsyncConnection, model: str, after: int, limit: int
) -> list[int]:
    """Mark pending again the next ``limit`` documents (by id, past ``after``) embedded by
    another model than ``model``; their ids. The old vector stays until the new one is
    stored (a search by the old model still finds them). Rows another transaction is
    writing are skipped (SKIP LOCKED): a store in flight is checked by its run, a delete
    leaves nothing to do, another re-embedding marks them."""
    chosen = (
        select(Document.id)
        .where(
            Document.id > after,
            Document.embedded_at.is_not(None),
            Document.embedding_model.is_distinct_from(model),
        )
        .order_by(Document.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(_table)
        .where(_table.c.id.in_(chosen))
        .values(embedded_at=None, error=None)
        .returning(_table.c.id)
    )
    return sorted((await connection.execute(statement)).scalars())


async def requeue_stale(connection: AsyncConnection, ids: Sequence[int], model: str) -> int:
    """Mark pending again those of ``ids`` that hold a vector of ``model`` (a run that
    embedded with a model no longer in force); how many."""
    statement = (
        update(_table)
        .where(_table.c.id.in_(ids), _table.c.embedding_model == model)
        .values(embedded_at=None)
    )
    return (await connection.execute(statement)).rowcount or 0
