"""The two apps the server benchmark measures, each served by a subprocess of its own:
``python -m bench.served_apps empty PORT`` (the baseline: a bare Uvicorn serving an empty
FastAPI app) and ``python -m bench.served_apps hearth PORT`` (Hearth's real app plus
``GET /bench/empty``, served by ``hearth.app.server.run``).

Only the standard library is imported here at module level, and nothing from the rest of
``bench``: the baseline must import FastAPI and Uvicorn and nothing more.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
EMPTY_ROUTE = "/bench/empty"
ROOT = Path(__file__).resolve().parents[1]  # where ``bench`` is a package


def command(app: str, port: int) -> list[str]:
    """The command that serves ``app`` (``empty`` or ``hearth``) on ``port``."""
    return [sys.executable, "-m", "bench.served_apps", app, str(port)]


def environment(base: dict[str, str]) -> dict[str, str]:
    """``base`` with the repository on the module path: the servers run in a scratch
    directory (so no ``.env`` is read), from where ``bench`` cannot be found otherwise."""
    path = [str(ROOT), *filter(None, [base.get("PYTHONPATH")])]
    return {**base, "PYTHONPATH": os.pathsep.join(path)}


async def _empty_route() -> dict[str, Any]:
    return {}


def serve_empty_app(port: int) -> int:
    """The baseline: a bare Uvicorn serving an empty FastAPI app with one route."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()
    app.add_api_route("/", _empty_route, methods=["GET"])
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)  # exit 0 after a clean stop
    uvicorn.run(app, host=LOOPBACK, port=port, log_level="warning", access_log=False)
    return 0


def serve_hearth_app(port: int) -> int:
    """Hearth's real app plus ``GET /bench/empty``, served by ``hearth.app.server.run``."""
    from hearth.app.factory import create_app
    from hearth.app.server import run
    from hearth.config.loader import load_settings
    from hearth.log import configure_logging

    settings = load_settings(host=LOOPBACK, port=port, log_level="WARNING")
    configure_logging(
        level="WARNING",
        fmt=settings.log_format,
        service=settings.service_name,
        secrets=settings.secret_values(),
    )
    app = create_app(settings)
    app.add_api_route(EMPTY_ROUTE, _empty_route, methods=["GET"])
    return run(settings, app)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("app", choices=["empty", "hearth"])
    parser.add_argument("port", type=int)
    args = parser.parse_args(argv)
    if args.app == "empty":
        return serve_empty_app(args.port)
    return serve_hearth_app(args.port)


if __name__ == "__main__":
    sys.exit(main())
