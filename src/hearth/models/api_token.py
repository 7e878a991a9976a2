"""An API token: a name, what it may do, and the SHA-256 of its secret (never the secret)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Identity, String, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from hearth.models.base import Base


class ApiToken(Base):
    """The ``api_tokens`` table: one row per token the operator created, kept once revoked
    so the console can show when it was."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Hex SHA-256 of the whole token: tokens are 256-bit random, so a fast hash is enough
    # (no dictionary to try), and a lookup by it is one index probe.
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # The token's first characters (``hth_Ab12``), so the operator can tell which one a
    # script holds; too short to be of any use to a guesser.
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
