"""FastAPI dependencies of ``/metrics``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hearth.metrics.service import MetricsService


async def get_metrics_service(request: Request) -> MetricsService:
    """The scrape service the app's lifespan built."""
    service: MetricsService = request.app.state.metrics_service
    return service


MetricsServiceDep = Annotated[MetricsService, Depends(get_metrics_service)]
