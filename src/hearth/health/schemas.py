"""The shapes of the health contract (see DESIGN.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from hearth.kit.checks import CheckResult

OverallStatus = Literal["ok", "degraded", "down"]


class HealthReport(BaseModel):
    """``GET /health``: the overall status, the version, and every check."""

    status: OverallStatus
    version: str
    checks: dict[str, CheckResult]


class ReadinessReport(BaseModel):
    """``GET /readyz``: ready to take traffic, and if not, why."""

    status: Literal["ready", "not_ready"]
    reason: str = ""
    checks: dict[str, CheckResult] = Field(default_factory=dict)
