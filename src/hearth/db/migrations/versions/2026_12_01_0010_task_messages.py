"""The embedded queue's messages (``hearth.worker.pg_transport``), in a table of Hearth's own.

Tasks still waiting in the tables of kombu's SQLAlchemy transport, the embedded queue before
this one, move here (same message format), so an upgrade loses none; kombu's tables are left
as they are. A downgrade drops the table and whatever waits in it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# EXECUTE: the statements name tables that exist only where kombu once created them.
MOVE_KOMBU_MESSAGES = """
DO $$
BEGIN
    IF to_regclass('kombu_message') IS NOT NULL AND to_regclass('kombu_queue') IS NOT NULL THEN
        EXECUTE 'INSERT INTO task_messages (queue, payload, task_id) '
            'SELECT q.name, m.payload, m.payload::jsonb -> ''headers'' ->> ''id'' '
            'FROM kombu_message m JOIN kombu_queue q ON q.id = m.queue_id '
            'WHERE m.visible ORDER BY m.id';
        EXECUTE 'DELETE FROM kombu_message WHERE visible';
    END IF;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "task_messages",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("queue", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("task_id", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("taken_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_messages")),
    )
    op.create_index(
        "ix_task_messages_waiting",
        "task_messages",
        ["queue", "id"],
        unique=False,
        postgresql_where=sa.text("taken_at IS NULL"),
    )
    op.create_index(
        "ix_task_messages_taken",
        "task_messages",
        ["taken_at"],
        unique=False,
        postgresql_where=sa.text("taken_at IS NOT NULL"),
    )
    op.execute(MOVE_KOMBU_MESSAGES)


def downgrade() -> None:
    op.drop_index("ix_task_messages_taken", table_name="task_messages")
    op.drop_index("ix_task_messages_waiting", table_name="task_messages")
    op.drop_table("task_messages")
