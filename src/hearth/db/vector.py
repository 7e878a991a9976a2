"""pgvector, where the server has it.

Hearth runs on any PostgreSQL; only document search needs pgvector. The documents
migration calls ``enable_vector_search``, and so does every start-up and ``hearth migrate``
after it, so installing pgvector on the server later turns search on without a new
migration. Vectors are stored unsized (their size depends on the embedding model, which the
operator may change), and each size gets its own partial HNSW index on
``embedding::vector(N)`` — pgvector's advice for a column holding several sizes.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.log import get_logger

log = get_logger(__name__)

# HNSW indexes vectors of at most this many dimensions (pgvector 0.8); larger ones are
# searched exactly, which is fine for the few thousand documents a home server holds.
HNSW_MAX_DIMENSIONS = 2000
INDEX_PREFIX = "ix_documents_embedding_"
# pg_advisory_xact_lock key for schema changes made here: "vector" in ASCII.
VECTOR_LOCK_ID = 0x766563746F72

_COLUMN_EXISTS = text(
    "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = 'documents' "
    "AND column_name = 'embedding')"
)
_AVAILABLE = text("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')")


def has_vector_column(connection: Connection) -> bool:
    """Whether ``documents.embedding`` exists, i.e. search can work on this database."""
    return bool(connection.scalar(_COLUMN_EXISTS))


class VectorSupport:
    """Whether this process's database can search vectors, read once rather than on every
    search. A yes is kept for good; a no is read again at most once a minute, so installing
    pgvector and running ``hearth migrate`` turns search on without a restart."""

    RECHECK_SECONDS = 60.0

    def __init__(self) -> None:
        self._available = False
        self._checked_at: float | None = None

    async def available(self, connection: AsyncConnection) -> bool:
        """Whether ``documents.embedding`` exists, reading it only when not known."""
        now = time.monotonic()
        stale = self._checked_at is None or now - self._checked_at >= self.RECHECK_SECONDS
        if not self._available and stale:
            self._available = await connection.run_sync(has_vector_column)
            self._checked_at = now
        return self._available


def enable_vector_search(connection: Connection) -> bool:
    """Create the extension and the ``embedding`` column when the server has pgvector and
    they are missing; True when search is available. Idempotent."""
    if connection.scalar(text("SELECT to_regclass('documents')")) is None:
        return False  # before the documents migration
    if has_vector_column(connection):
        return True
    if not connection.scalar(_AVAILABLE):
        log.warning(
            "pgvector_missing",
            hint="document search needs the pgvector extension on the PostgreSQL server; "
            "install it (e.g. the pgvector/pgvector image or the postgresql-NN-pgvector "
            "package), then restart Hearth or run `hearth migrate`",
        )
        return False
    # Replicas starting together: the second waits here, then finds the column.
    connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": VECTOR_LOCK_ID})
    if has_vector_column(connection):
        return True
    # IF NOT EXISTS: a no-op where an administrator (or Compose's init script) created it,
    # so Hearth's own role needs no superuser rights then.
    connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    connection.execute(text("ALTER TABLE documents ADD COLUMN IF NOT EXISTS embedding vector"))
    log.info("vector_search_enabled")
    return True


def index_name(dimensions: int) -> str:
    """The name of the HNSW index for vectors of ``dimensions``."""
    return f"{INDEX_PREFIX}{dimensions}"


def ensure_index(connection: Connection, dimensions: int) -> None:
    """The HNSW index (cosine distance) for vectors of ``dimensions``, created once."""
    if not 0 < dimensions <= HNSW_MAX_DIMENSIONS:
        return
    name = index_name(dimensions)
    if connection.scalar(text("SELECT to_regclass(:name)"), {"name": name}) is not None:
        return
    # Two workers meeting a new size at once: the lock makes the second find the index.
    connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": VECTOR_LOCK_ID})
    # ``dimensions`` is an int, never user text: it has to be a literal in a type modifier.
    connection.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {name} ON documents "
            f"USING hnsw ((embedding::vector({dimensions})) vector_cosine_ops) "
            f"WHERE embedding_dim = {dimensions}"
        )
    )
    log.info("vector_index_created", index=name, dimensions=dimensions)
