"""A component check's result: the one type every adapter's ``check()`` returns, shared by
health, the config page's connection tests and ``hearth check`` (see DESIGN.md)."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from hearth.kit.urls import mask_urls

# ``starting``: on its way up and within its start window (a worker ``hearth serve`` has just
# started, not yet reporting); nothing is wrong yet, so it does not degrade the overall status.
CheckStatus = Literal["ok", "starting", "unreachable", "unconfigured"]


class CheckResult(BaseModel):
    """One component's state. ``detail`` never holds a secret; health answers show it only to
    callers allowed to read details (``HEALTH_DETAILS``)."""

    status: CheckStatus
    detail: str = ""
    latency_ms: float = Field(default=0.0, ge=0)

    @field_validator("detail")
    @classmethod
    def _mask_urls(cls, detail: str) -> str:
        # Whatever an adapter or a library's error put in, a URL here is shown masked.
        return mask_urls(detail)

    @classmethod
    def timed(cls, status: CheckStatus, detail: str, started: float) -> CheckResult:
        """A result whose latency runs from ``started`` (a ``time.perf_counter()`` value)."""
        elapsed = (time.perf_counter() - started) * 1000
        return cls(status=status, detail=detail, latency_ms=round(elapsed, 2))
