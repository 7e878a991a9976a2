"""An operator's login, kept server-side so that logging out, or a new password, ends it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column

from hearth.models.base import Base


class OperatorSession(Base):
    """The ``operator_sessions`` table: one row per login. The cookie holds the session's id;
    the row only its SHA-256, so a copy of the table opens no session."""

    __tablename__ = "operator_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # A keyed, slow hash of the password the session was opened under (auth/sessions.py):
    # another ADMIN_PASSWORD, and the session is no more.
    password_fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
