"""A document: text and metadata, and once the worker has embedded it, its vector."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import DateTime, Identity, Index, Integer, String, Text, func
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hearth.models.base import Base

# A vector's model and size as one text, ``nomic-embed-text/768`` (NULL without a vector):
# the size is an integer, so the last ``/`` parts them and no two pairs give one key.
EMBEDDING_KEY = "((embedding_model)::text || '/' || (embedding_dim)::text)"


class Document(Base):
    """The ``documents`` table: text, metadata, and the vector once the worker has made it."""

    __tablename__ = "documents"
    __table_args__ = (
        # The worker's queue of work: documents not embedded yet, oldest first.
        Index("ix_documents_pending", "id", postgresql_where=sql("embedded_at IS NULL")),
        # What a search cannot see (no vector of its model and size) is counted through
        # this index, not a pass over every document (repository.nearest). An
        # expression, not the two columns: an index on those would tempt PostgreSQL to
        # answer the search itself with it, exactly and slowly, instead of the HNSW index.
        Index("ix_documents_embedding_key", sql(EMBEDDING_KEY)),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    # "metadata" is taken by SQLAlchemy's declarative base; the column keeps the plain name.
    meta: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, server_default=sql("'{}'::jsonb")
    )
    # The vector's size depends on the embedding model, which the operator may change, so
    # the column is unsized; each size gets its own HNSW index (hearth.db.vector). The
    # column exists only where pgvector is installed.
    embedding: Mapped[list[float] | None] = mapped_column(Vector(), nullable=True)
    embedding_model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    embedding_dim: Mapped[int | None] = mapped_column(Integer, nullable=True)
    embedded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Why the last embedding attempt failed (the LLM's one-line reason); cleared on success.
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
