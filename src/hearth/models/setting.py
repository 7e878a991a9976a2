"""A runtime setting: one non-secret key and its value, edited on the config page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Identity, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from hearth.models.base import Base


class Setting(Base):
    """The ``settings`` table: the stored runtime values, one row per key."""

    __tablename__ = "settings"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
