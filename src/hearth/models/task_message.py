"""A message of the embedded queue (``hearth.worker.pg_transport``): a task waiting for a
worker, or taken by one and not yet acknowledged."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from hearth.models.base import Base


class TaskMessage(Base):
    """The ``task_messages`` table. A row is deleted when its task is acknowledged; while it
    waits, ``taken_at`` is null."""

    __tablename__ = "task_messages"
    __table_args__ = (
        # What a worker looks for: the oldest waiting message of a queue.
        Index("ix_task_messages_waiting", "queue", "id", postgresql_where=text("taken_at IS NULL")),
        # What the sweeps look through: the few messages workers hold.
        Index("ix_task_messages_taken", "taken_at", postgresql_where=text("taken_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    queue: Mapped[str] = mapped_column(String(255))
    # kombu's message as JSON text, exactly as the transport hands it back.
    payload: Mapped[str] = mapped_column(Text)
    # Celery's task id (from the message's headers), for the sweep of orphaned tasks.
    task_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The worker (its node name, as its heartbeats record it) that took the message: the
    # sweep of orphaned tasks hands back only what a dead worker holds.
    taken_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
