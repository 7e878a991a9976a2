"""FastAPI dependencies of the health endpoints."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request

from hearth.access.caller import identify
from hearth.db.unit import DatabaseUnavailable
from hearth.health.liveness import Liveness
from hearth.health.readiness import Readiness
from hearth.health.schemas import DetailsPolicy
from hearth.health.service import HealthService


async def get_health(request: Request) -> HealthService:
    """The health checks the app was started with."""
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
    health: HealthService = request.app.state.health
    return health


HealthDep = Annotated[HealthService, Depends(get_health)]


async def get_readiness(request: Request) -> Readiness:
    """The readiness decision the app was started with."""
    readiness: Readiness = request.app.state.readiness
    return readiness


ReadinessDep = Annotated[Readiness, Depends(get_readiness)]


async def get_liveness(request: Request) -> Liveness:
    """Whether this process has given up on something only a restart can mend."""
    liveness: Liveness = request.app.state.liveness
    return liveness


LivenessDep = Annotated[Liveness, Depends(get_liveness)]


class Details(StrEnum):
    """Whether a caller reads the checks' details, and if not, what the pages say instead."""

    SHOWN = "shown"
    LOG_IN = "log_in"  # withheld: the operator's session or a ``read`` token would show them
    OFF = "off"  # withheld from everyone: HEALTH_DETAILS=never

    @property
    def shown(self) -> bool:
        """Whether the details are shown."""
        return self is Details.SHOWN


async def get_details(request: Request) -> Details:
    """What this caller may see of the checks (``HEALTH_DETAILS``): with ``when_authorized``,
    the details need the operator or a token with ``read`` scope."""
    policy: DetailsPolicy = request.app.state.health_details
    if policy == "always":
        return Details.SHOWN
    if policy == "never":
        return Details.OFF
    try:
        caller = await identify(request)
    except DatabaseUnavailable:
        # A token cannot be checked without the database: the probes still answer, as to
        # anyone (the details would say the database is down; the statuses say it too).
        return Details.LOG_IN
    return Details.SHOWN if caller.may("read") else Details.LOG_IN


DetailsDep = Annotated[Details, Depends(get_details)]
