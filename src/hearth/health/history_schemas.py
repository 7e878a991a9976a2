"""The shapes of ``GET /health/history``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from pydantic import BaseModel, Field

from hearth.health.timeline import SlotStatus
from hearth.kit.checks import CheckStatus
from hearth.models import HealthEvent

_DETAIL = (
    "What the check said at the change. null when withheld from this caller: anonymous "
    "callers get statuses and times only (HEALTH_DETAILS), as on /health."
)


class ComponentHistory(BaseModel):
    """One component's recent history."""

    status: CheckStatus | None = Field(description="The latest recorded status; null: none yet")
    since: datetime | None = Field(description="When the latest change happened (UTC)")
    detail: str | None = Field(default=None, description=_DETAIL)
    availability_24h: float | None = Field(
        ge=0,
        le=1,
        description="Share of the last 24 h the component was ok, of the time it was ok or "
        "unreachable (unconfigured counts as neither; unknown time is left out). null: no "
        "such time.",
    )
    availability_7d: float | None = Field(ge=0, le=1, description="The same over 7 days")
    bar: list[SlotStatus] = Field(
        description="The last 24 h in 16-minute slots, oldest first: each slot's worst "
        "status, or none where there is no data"
    )


class HistoryEvent(BaseModel):
    """One recorded change."""

    component: str
    status: CheckStatus
    changed_at: datetime
    detail: str | None = Field(default=None, description=_DETAIL)

    @classmethod
    def of(cls, event: HealthEvent, *, details: bool) -> HistoryEvent:
        """``event`` as shown to a caller who may (``details``) or may not read its detail."""
        return cls(
            component=event.component,
            status=cast("CheckStatus", event.status),
            changed_at=event.changed_at.astimezone(UTC),
            detail=event.detail if details else None,
        )


class HistoryReport(BaseModel):
    """``GET /health/history``: every component's history, and the latest changes."""

    generated_at: datetime
    bar_start: datetime = Field(description="When the first slot of each bar begins")
    bar_slot_seconds: int = Field(description="How long each slot of the bars is")
    components: dict[str, ComponentHistory]
    events: list[HistoryEvent] = Field(description="The latest changes, newest first")
