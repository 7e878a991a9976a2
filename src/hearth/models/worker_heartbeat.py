"""A worker's sign of life, written every few seconds by the worker itself."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, func
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
