"""The shapes of the health contract (see DESIGN.md)."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

CheckStatus = Literal["ok", "unreachable", "unconfigured"]
OverallStatus = Literal["ok", "degraded", "down"]


class CheckResult(BaseModel):
    """One component's state. ``detail`` is shown to anyone and never holds a secret."""

    status: CheckStatus
    detail: str = ""
    latency_ms: float = Field(default=0.0, ge=0)

    @classmethod
    def timed(cls, status: CheckStatus, detail: str, started: float) -> CheckResult:
        """A result whose latency runs from ``started`` (a ``time.perf_counter()`` value)."""
        elapsed = (time.perf_counter() - started) * 1000
        return cls(status=status, detail=detail, latency_ms=round(elapsed, 2))


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
