"""How the web app takes the metrics on, in one place the factory calls only when
METRICS_ENABLED is true: with it false, prometheus_client is never imported."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hearth.metrics.middleware import MetricsMiddleware
from hearth.metrics.registry import AppMetrics
from hearth.metrics.router import router
from hearth.metrics.service import MetricsService

if TYPE_CHECKING:
    from fastapi import FastAPI
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

    from hearth.health.service import HealthService


def install(app: FastAPI) -> AppMetrics:
    """Count every request (the middleware, around all the others added so far) and serve
    ``GET /metrics``; the registry the app's metrics live in."""
    metrics = AppMetrics.create()
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(router)
    return metrics


def scrape_service(
    metrics: AppMetrics,
    health: HealthService,
    engine: AsyncEngine | None,
    redis: Redis | None,
    worker_window: float,
) -> MetricsService:
    """The service ``/metrics`` gathers and renders with, on the runtime's resources;
    a worker counts while it reported within ``worker_window`` seconds."""
    return MetricsService(metrics, health, engine, redis, worker_window)
