"""The application factory. Nothing connects at import time: the lifespan opens the
runtime (database, Redis, LLM client), hands each resource to the dependency that provides
it to routes, and closes them all on shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from hearth import traces, web
from hearth.access.cache import GrantCache
from hearth.access.router import router as access_router
from hearth.app.runtime import Runtime, open_runtime
from hearth.audit.router import router as audit_router
from hearth.auth.router import router as auth_router
from hearth.auth.service import OperatorAuth
from hearth.auth.sessions import OperatorSessionStore, password_fingerprint
from hearth.config.router import router as config_router
from hearth.config.settings import Settings
from hearth.db.dependencies import answer_unavailable_database
from hearth.diagnostics.router import router as diagnostics_router
from hearth.diagnostics.service import DiagnosticsService
from hearth.documents.router import router as documents_router
from hearth.errors import StartupError
from hearth.health.dependencies import get_details
from hearth.health.history import HealthHistory
from hearth.health.history_router import router as history_router
from hearth.health.liveness import Liveness
from hearth.health.monitor import monitoring
from hearth.health.pages import router as pages_router
from hearth.health.router import router as health_router
from hearth.health.schemas import ComponentHealth
from hearth.log import get_logger
from hearth.mcp import endpoint as mcp_endpoint
from hearth.mcp.resources import ToolResources
from hearth.notify.router import router as notify_router
from hearth.version import hearth_version
from hearth.web.docs import install_docs
from hearth.web.errors import register_error_handlers
from hearth.web.headers import SecurityHeaders
from hearth.web.limits import BodyLimit, Limit
from hearth.web.middleware import RequestContextMiddleware
from hearth.web.openapi import install_openapi
from hearth.web.templating import set_page_context
from hearth.worker.identity import MISSED_BEATS
from hearth.worker.router import router as tasks_router

STATIC_DIR = Path(web.__file__).parent / "static"
# An operator session lasts a working day; then the password is asked again. The cookie and
# the session's row in the database (auth/sessions.py) both expire then.
SESSION_MAX_AGE_SECONDS = 12 * 3600

log = get_logger(__name__)


def publish(app: FastAPI, runtime: Runtime) -> None:
    """Hand each resource to the dependency that provides it (``get_sessions``,
    ``get_health``…), and the MCP tools theirs: the names below are the ones they read."""
    state = app.state
    state.sessions = runtime.sessions
    state.health = runtime.health
    state.readiness = runtime.readiness
    state.config = runtime.config
    state.llm = runtime.llm
    state.queue = runtime.queue
    state.redis = runtime.redis
    state.vector = runtime.vector
    state.audit = runtime.audit
    state.notify_sender = runtime.notify_sender
    if state.metrics is not None:
        from hearth.metrics import wiring

        state.metrics_service = wiring.scrape_service(
            state.metrics,
            runtime.health,
            runtime.engine,
            runtime.redis,
            runtime.settings.worker_heartbeat_seconds * MISSED_BEATS,
        )
    state.diagnostics = DiagnosticsService(
        settings=runtime.settings,
        health=runtime.health,
        engine=runtime.engine,
        redis=runtime.redis,
        worker_window=runtime.settings.worker_heartbeat_seconds * MISSED_BEATS,
        health_details=state.health_details != "never",
    )
    state.tool_resources = ToolResources(
        health=runtime.health,
        sessions=runtime.sessions,
        config=runtime.config,
        queue=runtime.queue,
        llm=runtime.llm,
        vector=runtime.vector,
        health_details=state.health_details != "never",
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the runtime and the MCP endpoint for the life of the app; close them after."""
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        # First in, last out: spans of the whole start-up and shutdown are sent.
        stack.enter_context(traces.running(settings, process="web"))
        try:
            runtime = await stack.enter_async_context(
                open_runtime(
                    settings,
                    serving=True,
                    liveness=app.state.liveness,
                    llm_calls=app.state.metrics.llm if app.state.metrics else None,
                )
            )
        except StartupError as exc:
            log.error("startup_failed", reason=exc.message)  # noqa: TRY400 (the reason says it all; no traceback)
            raise
        publish(app, runtime)
        # Every check every HEALTH_MONITOR_SECONDS, probed or not; each change recorded.
        await stack.enter_async_context(
            monitoring(
                runtime.health,
                HealthHistory(runtime.sessions),
                interval=settings.health_monitor_seconds,
            )
        )
        password = settings.admin_password.get_secret_value() if settings.admin_password else None
        app.state.auth = OperatorAuth(password)
        app.state.operator_sessions = OperatorSessionStore(
            runtime.sessions,
            fingerprint=await asyncio.to_thread(
                password_fingerprint, settings.secret_key.get_secret_value(), password
            ),
            lifetime_seconds=SESSION_MAX_AGE_SECONDS,
            check_seconds=settings.session_check_seconds,
        )
        if password is None:
            log.warning("operator_password_missing", hint="set ADMIN_PASSWORD to edit settings")
        if settings.bound_llm_api_key().unbound:
            # A key with no origin named beside it goes nowhere; the config page says so too.
            log.warning("llm_api_key_unbound", hint="set LLM_ENDPOINT or LLM_TRUSTED_ORIGIN")
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
        docs_url=None,  # hearth.web.docs serves it, without a CDN
        redoc_url=None,
        # FastAPI's own spans, once hearth.traces sets a tracer provider: never one FastAPI
        # would build from FASTAPI_OTEL_AUTO_CONFIGURE, and no span for probes or scrapes.
        telemetry={"auto_configure": False, "exclude": traces.untraced},
    )
    app.state.settings = settings
    # Before the lifespan: the server listens to it (a failure stops it with exit status 1).
    app.state.liveness = Liveness()
    app.state.health_details = settings.health_details  # read by ``get_details``
    # The API tokens this process verified lately (``get_grant_cache``): memory only, no
    # resource to open, so it lives as long as the app.
    app.state.grant_cache = GrantCache(settings.api_token_cache_seconds)
    register_error_handlers(app)
    answer_unavailable_database(app)
    set_page_context(app, _page_context)
    # Added first, so it runs inside the request context (last added runs outermost).
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key.get_secret_value(),
        session_cookie="hearth_session",
        max_age=SESSION_MAX_AGE_SECONDS,
        same_site="strict",
        https_only=settings.session_cookie_secure,
    )
    # Inside the request context, so a refused body is logged with its request id.
    app.add_middleware(
        BodyLimit,
        default=Limit(settings.max_request_bytes, "MAX_REQUEST_BYTES"),
        larger={
            "/documents/batch": Limit(settings.max_batch_request_bytes, "MAX_BATCH_REQUEST_BYTES")
        },
    )
    app.add_middleware(RequestContextMiddleware)
    # Outermost: every answer gets the headers, the 413s and 500s of the layers above too.
    app.add_middleware(SecurityHeaders, https=settings.session_cookie_secure)
    traces.instrument_app(app, settings)  # probes and scrapes untraced, queries included
    # Around everything: each request is counted with the status its client got. Imported
    # only when enabled: METRICS_ENABLED=false does without prometheus_client.
    app.state.metrics = None
    if settings.metrics_enabled:
        from hearth.metrics import wiring

        app.state.metrics = wiring.install(app)
    install_docs(app)  # before /static, which would answer for Swagger UI's files
    install_openapi(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health_router)
    app.include_router(history_router)
    app.include_router(pages_router)
    app.include_router(auth_router)
    app.include_router(config_router)
    app.include_router(notify_router)
    app.include_router(audit_router)
    app.include_router(access_router)
    app.include_router(tasks_router)
    app.include_router(documents_router)
    app.include_router(diagnostics_router)
    mcp_endpoint.install(app, settings, lambda: app.state.tool_resources)
    return app


async def _page_context(request: Request) -> dict[str, Any]:
    """The banner every page draws: the LLM's last known state, never waited for long, its
    detail only for a caller who may read it (``HEALTH_DETAILS``)."""
    health = getattr(request.app.state, "health", None)  # absent before the lifespan ran
    if health is None:
        return {}
    details = await get_details(request)
    llm = ComponentHealth.of(await health.latest("llm"), details=details.shown)
    return {"llm": llm, "health_details": details}
