"""A task run, as the worker's pool child recorded it when the run ended: the Tasks page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hearth.models.base import Base


class TaskRun(Base):
    """The ``task_runs`` table: one row per task id, rewritten when the same task runs again
    (handed back after its worker died, or retried by Celery); pruned hourly by the worker."""

    __tablename__ = "task_runs"
    __table_args__ = (
        Index(
            "ix_task_runs_failed_finished_at",
            "finished_at",
            postgresql_where=text("state = 'FAILURE'"),
        ),
    )

    task_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    # {"args": [...], "kwargs": {...}} as the task received them, for Retry; null when they
    # were too large to keep or named something secret-looking (then Retry is refused).
    arguments: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    worker: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    runtime_seconds: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    runs: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # Set by Retry on the Tasks page: the id of the new task sent in this one's place.
    retried_as: Mapped[str | None] = mapped_column(String(255), nullable=True)
    retried_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
