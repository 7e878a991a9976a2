"""The Tasks page: each task run as a worker's pool child recorded it when it ended, and what
each worker is running now, written with its heartbeat.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_runs",
        sa.Column("task_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("arguments", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("worker", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("runtime_seconds", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("runs", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("retried_as", sa.String(length=255), nullable=True),
        sa.Column("retried_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_task_runs")),
    )
    op.create_index(op.f("ix_task_runs_finished_at"), "task_runs", ["finished_at"], unique=False)
    op.create_index(
        "ix_task_runs_failed_finished_at",
        "task_runs",
        ["finished_at"],
        unique=False,
        postgresql_where=sa.text("state = 'FAILURE'"),
    )
    op.add_column(
        "worker_heartbeats",
        sa.Column("running", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("worker_heartbeats", "running")
    op.drop_index("ix_task_runs_failed_finished_at", table_name="task_runs")
    op.drop_index(op.f("ix_task_runs_finished_at"), table_name="task_runs")
    op.drop_table("task_runs")
