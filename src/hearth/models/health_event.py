"""A change of a component's status: the health history, and what notifications follow."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from hearth.models.base import Base


class HealthEvent(Base):
    """The ``health_events`` table: one row each time a component's status changes (not one
    per probe), with a detail that holds no secret. ``notified_at`` is set by the one
    replica that claimed the notice for this change."""

    __tablename__ = "health_events"
    __table_args__ = (Index("ix_health_events_component_changed_at", "component", "changed_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    component: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
