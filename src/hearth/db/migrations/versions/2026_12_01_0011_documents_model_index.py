"""Documents: an index on the embedding model and size as one key, so a search counts the
documents it cannot see without reading every document.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # hearth.models.document.EMBEDDING_KEY, spelled here as it was when this migration was
    # written (a migration does not change when the model does).
    op.create_index(
        "ix_documents_embedding_key",
        "documents",
        [sa.text("((embedding_model)::text || '/' || (embedding_dim)::text)")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_documents_embedding_key", table_name="documents")
