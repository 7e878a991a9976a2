"""One line of the audit trail: who did what, from where, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, String, func
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hearth.models.base import Base


class AuditEvent(Base):
    """The ``audit_events`` table: security-relevant actions, kept 90 days. No secret in it."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # Indexed: pruning deletes by age.
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    action: Mapped[str] = mapped_column(String(64))
    # "operator", "token:NAME", "anonymous" or "cli".
    actor: Mapped[str] = mapped_column(String(255))
    # The client's address as Hearth sees it (behind a trusted proxy, the forwarded one);
    # none for a command run on the host.
    client: Mapped[str | None] = mapped_column(String(255), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql("'{}'::jsonb"))
