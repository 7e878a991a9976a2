"""Compile the bytecode of what Hearth's processes import, and of no more (the image build).

Run by the Dockerfile with the image's virtualenv, after Hearth and its dependencies are
installed without bytecode. It goes through what `hearth serve` and `hearth worker` import
(the web app with its MCP endpoint, Uvicorn, the migrations, the Celery worker with its pool
and transports, notifications, traces) without connecting to anything; Python itself writes
the bytecode of each module so imported. Then Hearth's own package is compiled whole.

Every other module of the virtualenv keeps its source only: about half of the third-party
code (SQLAlchemy's test helpers, Celery's interactive shell and its terminal tables, the
transports Hearth does not use...). Should a process import one after all, Python compiles
it then, in memory: it costs that process a moment, never a failure. The sources all stay,
so that every traceback quotes its lines.
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import importlib
import os
import pkgutil
import sys
from pathlib import Path

# Settings that parse, and name services nothing connects to: nothing here opens a socket.
ENVIRONMENT = {
    "SECRET_KEY": "image-build-" + "x" * 32,
    "DATABASE_URL": "postgresql://hearth@127.0.0.1:9/hearth",
    "REDIS_URL": "redis://127.0.0.1:9/0",
    "MCP_TOKEN": "image-build-mcp-token",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
}
UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: refused at once


def import_hearth() -> None:
    """Every module of Hearth, and so everything they import when loaded."""
    import hearth

    for module in pkgutil.walk_packages(hearth.__path__, "hearth."):
        if module.name.endswith("__main__") or ".migrations" in module.name:
            continue
        importlib.import_module(module.name)


def import_web() -> None:
    """The web app with its MCP server, as `hearth serve` builds it, Uvicorn's parts, the
    pages' templates (compiled by Jinja2), and HTTP clients sending a request (refused)."""
    import uvicorn

    from hearth.app.factory import create_app
    from hearth.config.settings import Settings
    from hearth.mcp import endpoint
    from hearth.web.templating import TEMPLATES

    app = create_app(Settings(_env_file=None))
    endpoint._build(lambda: None)  # type: ignore[arg-type,return-value]  # noqa: SLF001
    uvicorn.Config(app, loop="uvloop", http="httptools", lifespan="on").load()
    for name in ("uvicorn.loops.auto", "uvicorn.loops.uvloop", "uvicorn.protocols.http.auto"):
        importlib.import_module(name)
    templates = TEMPLATES._templates.env  # noqa: SLF001
    for template in templates.list_templates():
        templates.get_template(template)
    import httpx

    with contextlib.suppress(httpx.HTTPError):
        httpx.get(UNREACHABLE)
    asyncio.run(_send_request())


async def _send_request() -> None:
    """A request from httpx's async client, in asyncio under AnyIO (as the app sends them)."""
    import anyio.lowlevel
    import httpx

    await anyio.lowlevel.checkpoint()
    async with httpx.AsyncClient() as client:
        with contextlib.suppress(httpx.HTTPError):
            await client.get(UNREACHABLE)


def import_migrations() -> None:
    """Alembic's runtime and its dialect support (`hearth serve` migrates first)."""
    for name in ("alembic.command", "alembic.runtime.migration", "alembic.ddl"):
        importlib.import_module(name)


def import_worker() -> None:
    """The Celery worker as `hearth worker` starts it: the app, its tasks, the worker's steps,
    the prefork pool, and both transports (Redis, and Hearth's own on PostgreSQL)."""
    from hearth.config.settings import Settings
    from hearth.worker.app import create_celery
    from hearth.worker.run import _import_what_the_pool_uses

    settings = Settings(_env_file=None)
    app = create_celery(settings, ENVIRONMENT["DATABASE_URL"], waits=False)
    app.loader.import_default_modules()
    for name in (
        "celery.apps.worker",
        "celery.app.control",
        "celery.app.events",
        "celery.app.log",
        "celery.beat",
        "celery.events.dispatcher",
        "celery.events.receiver",
        "celery.worker.autoscale",
        "celery.worker.components",
        "celery.worker.consumer",
        "celery.worker.consumer.delayed_delivery",
        "celery.worker.strategy",
        "celery.concurrency.prefork",
        "celery.backends.redis",
        "celery.backends.database",
        "billiard.popen_fork",
        "billiard.sharedctypes",
        "billiard.synchronize",
        "kombu.matcher",
        "kombu.mixins",
        "kombu.pidbox",
        "kombu.transport.redis",
        "hearth.worker.pg_transport",
        "prometheus_client.multiprocess",
    ):
        importlib.import_module(name)
    _import_what_the_pool_uses(app, metrics=True)


def import_notifications() -> None:
    """Apprise with its plugins, which it loads all at once on first use."""
    import apprise

    apprise.Apprise().add("json://127.0.0.1:9")


def main() -> int:
    """Import, so writing the bytecode of, all the above; then compile Hearth's package.
    Exit 0, or 1 if a module of Hearth does not compile."""
    os.environ.update(ENVIRONMENT)
    sys.dont_write_bytecode = False  # the point: Python writes what it imports
    import_hearth()
    import_web()
    import_migrations()
    import_worker()
    import_notifications()
    import hearth

    package = Path(hearth.__file__).parent
    return 0 if compileall.compile_dir(package, quiet=1) else 1


if __name__ == "__main__":
    sys.exit(main())
