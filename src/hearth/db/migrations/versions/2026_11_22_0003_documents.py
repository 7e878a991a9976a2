"""Documents, and pgvector where the server has it.

The ``embedding`` column and the ``vector`` extension are added by
``hearth.db.vector.enable_vector_search``, which start-up runs again after every upgrade:
on a server without pgvector the table is created without the column, and installing
pgvector later adds it without another migration.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hearth.db.vector import enable_vector_search

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("embedding_model", sa.String(length=255), nullable=True),
        sa.Column("embedding_dim", sa.Integer(), nullable=True),
        sa.Column("embedded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
    )
    op.create_index(
        "ix_documents_pending",
        "documents",
        ["id"],
        unique=False,
        postgresql_where=sa.text("embedded_at IS NULL"),
    )
    enable_vector_search(op.get_bind())


def downgrade() -> None:
    # The per-size HNSW indexes go with the table. The extension stays: other schemas may
    # use it, and dropping it needs rights Hearth's role may not have.
    op.drop_index("ix_documents_pending", table_name="documents")
    op.drop_table("documents")
