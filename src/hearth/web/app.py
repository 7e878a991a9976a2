"""The application factory. Nothing connects at import time: the lifespan opens the
runtime (database, Redis, LLM client) and closes it on shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from hearth.auth.router import router as auth_router
from hearth.auth.service import OperatorAuth
from hearth.config.router import router as config_router
from hearth.config.settings import Settings
from hearth.documents.router import router as documents_router
from hearth.errors import StartupError
from hearth.health.router import router as health_router
from hearth.log import get_logger
from hearth.mcp import endpoint as mcp_endpoint
from hearth.runtime import open_runtime
from hearth.version import hearth_version
from hearth.web.errors import register_error_handlers
from hearth.web.middleware import RequestContextMiddleware
from hearth.web.pages import router as pages_router
from hearth.worker.router import router as tasks_router

STATIC_DIR = Path(__file__).parent / "static"
# An operator session lasts a working day; then the password is asked again.
SESSION_MAX_AGE_SECONDS = 12 * 3600

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
        password = settings.admin_password
        app.state.auth = OperatorAuth(password.get_secret_value() if password else None)
        if password is None:
            log.warning("operator_password_missing", hint="set ADMIN_PASSWORD to edit settings")
        # Inside the runtime: the MCP sessions end before the resources their tools use.
        await stack.enter_async_context(mcp_endpoint.lifespan(app))
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
    # Added first, so it runs inside the request context (last added runs outermost).
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key.get_secret_value(),
        session_cookie="hearth_session",
        max_age=SESSION_MAX_AGE_SECONDS,
        same_site="strict",
        https_only=settings.session_cookie_secure,
    )
    app.add_middleware(RequestContextMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health_router)
    app.include_router(pages_router)
    app.include_router(auth_router)
    app.include_router(config_router)
    app.include_router(tasks_router)
    app.include_router(documents_router)
    mcp_endpoint.install(app, settings)
    return app
