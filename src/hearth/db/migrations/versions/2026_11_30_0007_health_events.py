"""The health history: each change of a component's status, and whether it was notified.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "health_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("component", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_events")),
    )
    op.create_index(
        op.f("ix_health_events_changed_at"), "health_events", ["changed_at"], unique=False
    )
    op.create_index(
        "ix_health_events_component_changed_at",
        "health_events",
        ["component", "changed_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_health_events_component_changed_at", table_name="health_events")
    op.drop_index(op.f("ix_health_events_changed_at"), table_name="health_events")
    op.drop_table("health_events")
