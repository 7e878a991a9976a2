"""What each process imports: nothing it does not use.

Every module a process imports costs it start-up time and memory for as long as it runs;
`make bench` measures both against bare baselines. These tests hold the modules that
`hearth serve` and the worker's main process leave out to it, each in a fresh interpreter
(``sys.modules`` in a subprocess), and check that what the pool's children use is imported
before they are forked, so that they share it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support.process import printed_json

# Used by none of Hearth's start-up paths, or only on some paths, imported there when used:
# migrations (only when some are pending), outbound HTTP (the LLM, Google, notifications),
# the task queue's client (the first task sent), templates (the first page), the MCP server
# (the first MCP request), WebSockets (no route takes one) and rich (tracebacks in colour,
# httpx's command line).
NEVER_AT_START = (
    "alembic",
    "apprise",
    "billiard",
    "celery",
    "cffi",
    "fastmcp",
    "httpcore",
    "httpx",
    "jinja2",
    "kombu",
    "mcp",
    "pygments",
    "redis",
    "rich",
    "websockets",
    "wsproto",
    "yaml",
)
# Serving only: the worker's main process has no web app and renders no page.
NEVER_IN_THE_WORKER = (
    "alembic",
    "apprise",
    "fastapi",
    "fastmcp",
    "httpx._main",
    "jinja2",
    "mcp",
    "pygments",
    "rich",
    "starlette",
    "uvicorn",
    "websockets",
)


def _loaded(code: str, tmp_path: Path, **env: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; the modules it had loaded at the end."""
    script = textwrap.dedent(code) + "\nprint('LOADED ' + json.dumps(sorted(sys.modules)))\n"
    modules: list[str] = printed_json(script, tmp_path, "LOADED", **env)
    return modules


def _among(modules: list[str], names: tuple[str, ...]) -> list[str]:
    """The names in ``names`` loaded, themselves or as the package of a loaded module."""
    return sorted(
        name for name in names if any(m == name or m.startswith(f"{name}.") for m in modules)
    )


def test_serve_imports_nothing_it_does_not_use_before_it_serves(tmp_path: Path) -> None:
    """What `hearth serve` runs before Uvicorn takes over: the settings, the logs, the app
    and Uvicorn's configuration, loaded as Uvicorn loads it."""
    modules = _loaded(
        """
        from hearth import cli
        settings = cli._settings()
        cli._configure_logging(settings)
        from hearth.app.factory import create_app
        from hearth.app.server import uvicorn_config
        uvicorn_config(settings, create_app(settings)).load()
        """,
        tmp_path,
        HEARTH_DATA_DIR=str(tmp_path / "data"),
    )
    assert "fastapi" in modules  # the probe sees imports
    assert "sqlalchemy" in modules
    assert _among(modules, NEVER_AT_START) == []


def test_the_worker_main_process_imports_nothing_of_the_web_app(tmp_path: Path) -> None:
    """The worker's main process as it is when its pool is forked: the settings, the
    Celery app with every task module, and what it imports for its children."""
    modules = _loaded(
        """
        from hearth import cli
        from hearth.worker import run
        from hearth.worker.app import create_celery
        settings = cli._settings()
        cli._configure_logging(settings)
        app = create_celery(settings, settings.database_url)
        app.loader.import_default_modules()
        run._import_what_the_pool_uses(app, metrics=True)
        from hearth.models import Base
        assert all(mapper.configured for mapper in Base.registry.mappers)
        """,
        tmp_path,
        # Never connected to: building the app and importing the tasks connects nowhere.
        DATABASE_URL="postgresql+psycopg://hearth@127.0.0.1:1/hearth",
        REDIS_URL="redis://127.0.0.1:1/0",
    )
    assert "celery" in modules
    assert "hearth.documents.tasks" in modules
    assert _among(modules, NEVER_IN_THE_WORKER) == []


def test_the_pool_children_import_nothing_for_their_http_client(tmp_path: Path) -> None:
    """What a child's first embedding run imports for its HTTP client (httpx imports its
    transport only when a client is made) is imported before the fork, where the children
    share it; not in each child afterwards."""
    code = """
        from hearth import log
        from celery import Celery
        from hearth.worker import run
        app = Celery("imports", broker="memory://", backend="cache+memory://")
        run._import_what_the_pool_uses(app, metrics=False)
        before = set(sys.modules)
        import asyncio, httpx
        async def use() -> None:
            async with httpx.AsyncClient() as client:
                await client.get("http://127.0.0.1:1/", timeout=0.5)
        try:
            asyncio.run(use())
        except httpx.ConnectError:
            pass
        print("NEW " + json.dumps(sorted(set(sys.modules) - before)))
        """
    assert printed_json(code, tmp_path, "NEW") == []


def test_httpx_comes_without_rich_and_still_works(tmp_path: Path) -> None:
    """Httpx's command line (rich, pygments) is refused once Hearth's logging is imported;
    the client itself is whole, and its stand-in ``main`` says the command line is absent."""
    modules = _loaded(
        """
        import hearth.log
        import httpx
        assert httpx.Client().get  # the client works without its command line
        """,
        tmp_path,
    )
    assert "httpx" in modules
    assert _among(modules, ("httpx._main", "rich", "pygments")) == []
    without = _loaded("import httpx", tmp_path)  # the probe could fail: rich is installed
    assert _among(without, ("httpx._main", "rich")) == ["httpx._main", "rich"]


def test_redis_comes_without_the_opentelemetry_sdk_and_still_works(tmp_path: Path) -> None:
    """redis-py imports the OpenTelemetry SDK's metrics when the SDK is installed (the traces
    extra brings it), for metrics of its own Hearth never turns on; refused once Hearth's
    logging is imported. The client itself is whole; traces, when on, use the SDK's traces."""
    modules = _loaded(
        """
        import hearth.log
        import redis, redis.asyncio
        assert redis.Redis.from_url("redis://127.0.0.1:1/0").ping
        from redis.observability import providers
        assert not providers.OTEL_AVAILABLE
        import hearth.traces.setup  # what traces import when switched on
        """,
        tmp_path,
    )
    assert "redis" in modules
    assert "opentelemetry.sdk.trace" in modules
    assert _among(modules, ("opentelemetry.sdk.metrics",)) == []
    without = _loaded("import redis", tmp_path)  # the probe could fail: the SDK is installed
    assert _among(without, ("opentelemetry.sdk.metrics",)) == ["opentelemetry.sdk.metrics"]


def test_a_call_to_the_model_looks_up_no_module_once_warm(tmp_path: Path) -> None:
    """After its first call, a call to the model server imports nothing: every module it
    uses is in ``sys.modules``, and none is looked for and found missing on each call (as
    httpcore's ``import sniffio`` was: four searches of ``sys.path`` a request)."""
    code = """
        import asyncio, importlib.abc, httpx
        from hearth.llm.ollama import OllamaAdapter
        from tests.support.fake_llm import FakeLLM
        from tests.support.services import serving

        class Record(importlib.abc.MetaPathFinder):
            def __init__(self):
                self.looked_up = []
            def find_spec(self, fullname, path, target=None):
                self.looked_up.append(fullname)
                return None  # the next finder on sys.meta_path decides

        async def calls(url: str) -> list[str]:
            async with httpx.AsyncClient() as client:
                adapter = OllamaAdapter(url, client)
                await adapter.embed(["warm"], model="nomic-embed-text")
                record = Record()
                sys.meta_path.insert(0, record)
                for text in ("one", "two", "three"):
                    await adapter.embed([text], model="nomic-embed-text")
                sys.meta_path.remove(record)
                return record.looked_up

        with serving(FakeLLM()) as llm:
            print("LOOKED_UP " + json.dumps(asyncio.run(calls(llm.url))))
        """
    assert printed_json(code, tmp_path, "LOOKED_UP") == []
