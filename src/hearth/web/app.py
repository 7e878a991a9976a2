"""The application factory. Nothing connects at import time: the lifespan opens the
runtime (database, Redis, LLM client) and closes it on shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from hearth.config.settings import Settings
from hearth.errors import StartupError
from hearth.health.router import router as health_router
from hearth.log import get_logger
from hearth.runtime import open_runtime
from hearth.version import hearth_version
from hearth.web.errors import register_error_handlers
from hearth.web.middleware import RequestContextMiddleware

log = get_logger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        try:
            runtime = await stack.enter_async_context(open_runtime(settings, serving=True))
        except StartupError as exc:
            log.error("startup_failed", reason=exc.message)
            raise
        app.state.runtime = runtime
        log.info("hearth_ready", version=hearth_version())
        yield
        log.info("hearth_stopping")


def create_app(settings: Settings) -> FastAPI:
    """Build the web app for ``settings``; resources are opened by its lifespan."""
    app = FastAPI(
        title="Hearth",
        version=hearth_version(),
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    register_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router)
    return app
