"""FastAPI dependencies of the health endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hearth.health.readiness import Readiness
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
