"""A worker's sign of life, written every few seconds by the worker itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hearth.models.base import Base


class WorkerHeartbeat(Base):
    """The ``worker_heartbeats`` table: one row per worker host, rewritten while it runs."""

    __tablename__ = "worker_heartbeats"

    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The worker's task and LLM metrics as of this report (hearth.worker.metrics), read by
    # the web app's /metrics; null from a worker with METRICS_ENABLED=false.
    metrics: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB, nullable=True)
    # The tasks the worker was running as of this report ({"id", "name", "started_at"}), for
    # the Tasks page; null from a worker older than migration 0009.
    running: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB, nullable=True)
