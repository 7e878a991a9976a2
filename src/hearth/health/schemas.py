"""The shapes of the health contract (see DESIGN.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from hearth.kit.checks import CheckResult, CheckStatus

OverallStatus = Literal["ok", "degraded", "down"]
# Who reads each check's detail (``HEALTH_DETAILS``), as Spring Boot Actuator's
# ``show-details``: the operator and ``read`` tokens, everyone, or no one.
DetailsPolicy = Literal["when_authorized", "always", "never"]

_DETAIL = (
    "What the check found: versions, hosts, the error. null when withheld from this caller: "
    "anonymous callers get statuses and latencies only (HEALTH_DETAILS)."
)


class ComponentHealth(BaseModel):
    """One component in a health answer: its check's result, the detail withheld (null)
    from a caller who may not read it. One shape for both, so clients need one parser."""

    status: CheckStatus
    detail: str | None = Field(default=None, description=_DETAIL)
    latency_ms: float = Field(default=0.0, ge=0)

    @classmethod
    def of(cls, result: CheckResult, *, details: bool) -> ComponentHealth:
        """``result`` as shown to a caller who may (``details``) or may not read its detail."""
        # Built without validation: ``result`` is valid already, and probes call this often.
        return cls.model_construct(
            status=result.status,
            detail=result.detail if details else None,
            latency_ms=result.latency_ms,
        )


class HealthReport(BaseModel):
    """``GET /health``: the overall status, the version, and every check."""

    status: OverallStatus
    version: str
    checks: dict[str, ComponentHealth]


class ReadinessReport(BaseModel):
    """``GET /readyz``: ready to take traffic, and if not, why."""

    status: Literal["ready", "not_ready"]
    reason: str = Field(
        default="",
        description="Why not ready: the failing critical checks (with their details for a "
        "caller who may read them) or the pending migrations. Empty when ready.",
    )
    checks: dict[str, ComponentHealth] = Field(default_factory=dict)
