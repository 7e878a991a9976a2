"""Run the web app under Uvicorn, with Hearth's logging and exit codes."""

from __future__ import annotations

import logging
import signal

import uvicorn
from fastapi import FastAPI

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from hearth.health.liveness import Liveness
from hearth.kit import collector
from hearth.log import get_logger

log = get_logger(__name__)


class _HideStartupTraceback(logging.Filter):
    """Uvicorn logs the traceback of a failed lifespan start-up. When the failure is a
    ``StartupError``, Hearth has already logged its reason in one line: drop the repeat."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "hearth.errors.StartupError" not in record.getMessage()


def uvicorn_config(settings: Settings, app: FastAPI) -> uvicorn.Config:
    """How Uvicorn serves ``app``."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the caller's logging: the redacting pipeline
        access_log=False,  # the request middleware logs each request with its request id
        server_header=False,
        lifespan="on",
        # No route takes a WebSocket: Uvicorn then imports no WebSocket library at start-up
        # (it would load one to answer upgrades with 404s; now they get a plain HTTP answer).
        ws="none",
        # The client address behind a reverse proxy: X-Forwarded-For is believed only from
        # these peers (the login throttle keys on the address; docs/security.md).
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def run(settings: Settings, app: FastAPI | None = None) -> int:
    """Serve until stopped (Ctrl-C or SIGTERM); 0 after a clean stop, 1 if start-up failed
    or the process gave up (``/livez`` failing: the embedded PostgreSQL would not come back).

    Logging must be configured already (``configure_logging``). ``app`` defaults to
    ``create_app(settings)``; the benchmark passes one with an extra route.
    """
    logging.getLogger("uvicorn.error").addFilter(_HideStartupTraceback())

    app = app or create_app(settings)
    server = uvicorn.Server(uvicorn_config(settings, app))
    collector.resume()  # the modules and the app are built: set them aside for good
    liveness: Liveness = app.state.liveness

    def stop(reason: str) -> None:
        log.error("hearth_exiting", reason=reason, exit_status=1)
        server.should_exit = True  # a graceful stop: requests in flight finish first

    liveness.on_failure(stop)
    # Uvicorn shuts down gracefully on SIGTERM, then raises the signal again so that the
    # previous handler runs. SIGTERM is how Docker and systemd stop a service: once the
    # shutdown is clean, exit 0 instead of dying by the signal.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        server.run()
    except SystemExit:  # uvicorn exits with status 3 when the lifespan start-up fails
        return 1
    return 0 if server.started and liveness.alive else 1
