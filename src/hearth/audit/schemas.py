"""The audit trail as API clients and ``hearth audit --json`` see it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from hearth.models import AuditEvent


class AuditEntry(BaseModel):
    """One recorded action; its time in UTC."""

    id: int
    at: datetime
    action: str
    actor: str
    client: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEntry:
        """The entry for a stored event."""
        return cls(
            id=event.id,
            at=event.at.astimezone(UTC),
            action=event.action,
            actor=event.actor,
            client=event.client,
            details=event.details,
        )


class AuditPage(BaseModel):
    """A page of the trail, newest first; ``older`` is the ``before`` of the next page."""

    events: list[AuditEntry]
    older: int | None
