"""Traces off (OTEL_EXPORTER_OTLP_ENDPOINT unset): Hearth loads nothing of OpenTelemetry.

FastAPI (0.165 and later: its native telemetry) and redis-py (8: its observability module,
when the SDK is installed) import parts of OpenTelemetry themselves, whatever Hearth does;
so "nothing" is measured against a process that imports only those two. Hearth must add
nothing to that: no SDK tracing, no exporter, no instrumentation, no protobuf.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hearth.config.settings import Settings
from hearth.worker.app import create_celery
from tests.support.otlp import otlp_receiver
from tests.support.process import TEST_SECRET_KEY, clean_environment, json_printed_by
from tests.support.worker import hearth_worker

# What Hearth loads only with traces on (hearth.traces itself is a flag and a few lines).
TRACES_ONLY = (
    "hearth.traces.setup",
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter",
    "opentelemetry.instrumentation",
    "opentelemetry.proto",
    "google.protobuf",
)


def _probe(kind: str, env: Mapping[str, str], cwd: Path) -> dict[str, Any]:
    """What ``tests.traces.probe`` reports from a fresh process."""
    command = [sys.executable, "-m", "tests.traces.probe", kind]
    report: dict[str, Any] = json_printed_by(command, env, cwd, "PROBE")
    return report


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The OpenTelemetry modules FastAPI and redis-py load by themselves."""
    cwd = tmp_path_factory.mktemp("baseline")
    return set(_probe("baseline", clean_environment(), cwd)["modules"])


@pytest.fixture
def probe_env(database_url: str, queue_redis: str, api_token: str) -> dict[str, str]:
    return clean_environment(
        DATABASE_URL=database_url, REDIS_URL=queue_redis, PROBE_TOKEN=api_token
    )


def _added_by_hearth(modules: list[str], baseline: set[str]) -> list[str]:
    return [name for name in modules if name not in baseline and name != "hearth.traces"]


def test_the_web_app_loads_nothing_of_opentelemetry_when_unset(
    probe_env: dict[str, str], baseline: set[str], tmp_path: Path
) -> None:
    report = _probe("web", probe_env, tmp_path)
    assert report["statuses"] == [200, 202, 200]
    assert _added_by_hearth(report["modules"], baseline) == []
    assert report["provider"] == "ProxyTracerProvider"  # no tracer provider was ever set


def test_the_probe_sees_what_traces_load_when_set(
    probe_env: dict[str, str], baseline: set[str], tmp_path: Path
) -> None:
    """The same probe with traces on: it does see the SDK, the exporter and the rest (the
    test above could fail)."""
    with otlp_receiver() as receiver:
        env = {**probe_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        report = _probe("web", env, tmp_path)
        receiver.wait_for(lambda spans: any(s.name == "POST /documents" for s in spans))
    added = _added_by_hearth(report["modules"], baseline)
    for prefix in TRACES_ONLY:
        assert any(name.startswith(prefix) for name in added), prefix
    assert report["provider"] == "TracerProvider"


@pytest.mark.worker
def test_a_worker_loads_nothing_of_opentelemetry_when_unset(
    database_url: str, queue_redis: str, baseline: set[str], tmp_path: Path
) -> None:
    """Seen from a pool child, where tasks run, after start-up and a task."""
    env = clean_environment(DATABASE_URL=database_url, REDIS_URL=queue_redis)
    settings = Settings(_env_file=None, secret_key=TEST_SECRET_KEY, redis_url=queue_redis)
    app = create_celery(settings, database_url)
    try:
        with hearth_worker(env, tmp_path):  # its pool child would import hearth.traces.worker
            result = app.send_task(
                "tests.loaded_modules", args=["opentelemetry", "hearth.traces", "google.protobuf"]
            )
            modules: list[str] = result.get(timeout=60)
    finally:
        app.close()
    assert "hearth.traces" in modules  # imported, as a flag, by the engine and the worker
    assert _added_by_hearth(modules, baseline) == []
