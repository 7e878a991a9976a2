"""What a fresh process has loaded of OpenTelemetry, printed as JSON.

Run as ``python -m tests.traces.probe web|baseline``: the modules whose names start with one
of ``PREFIXES``, after

- ``web``: what `hearth serve` does, the settings from the environment: logging configured
  as the command configures it, ``create_app``, its lifespan, and requests (a health check,
  a document added, which sends a task, and the dashboard);
- ``baseline``: importing FastAPI and redis-py alone, which import OpenTelemetry themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

PREFIXES = ("opentelemetry", "google.protobuf", "hearth.traces")


def loaded() -> list[str]:
    """The loaded modules under ``PREFIXES``."""
    return sorted(name for name in sys.modules if name.startswith(PREFIXES))


async def serve_a_few_requests() -> list[int]:
    """The statuses of a few requests, answered by the app inside its lifespan."""
    import httpx

    from hearth import cli
    from hearth.app.factory import create_app
    from hearth.config.loader import load_settings

    settings = load_settings()
    cli._configure_logging(settings)  # exactly what `hearth serve` runs
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {os.environ['PROBE_TOKEN']}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            return [
                (await client.get("/health")).status_code,
                (await client.post("/documents", json={"text": "x"}, headers=headers)).status_code,
                (await client.get("/")).status_code,
            ]


def main() -> None:
    if sys.argv[1] == "baseline":
        import fastapi
        import redis

        del fastapi, redis
        sys.stdout.write(f"PROBE {json.dumps({'modules': loaded()})}\n")
        return
    statuses = asyncio.run(serve_a_few_requests())
    from opentelemetry import trace

    provider = type(trace.get_tracer_provider()).__name__
    report = {"modules": loaded(), "statuses": statuses, "provider": provider}
    sys.stdout.write(f"PROBE {json.dumps(report)}\n")


if __name__ == "__main__":
    main()
