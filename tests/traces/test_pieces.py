"""The pieces of traces that need no server: the setting, which requests go untraced, the
trace ids in log lines, and who the spans say they come from."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from hearth import traces
from hearth.config.loader import load_settings
from hearth.config.settings import Settings
from hearth.errors import StartupError
from hearth.log import configure_logging, get_logger
from hearth.traces import setup
from tests.support.process import TEST_SECRET_KEY


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, secret_key=TEST_SECRET_KEY, **values)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://otel-collector:4318", "http://otel-collector:4318"),
        ("  https://tempo.lan:4318/  ", "https://tempo.lan:4318/"),
        ("", None),  # as Compose writes ${OTEL_EXPORTER_OTLP_ENDPOINT:-}: traces off
    ],
)
def test_the_endpoint_setting(value: str, expected: str | None) -> None:
    settings = _settings(otel_exporter_otlp_endpoint=value)
    assert settings.otel_exporter_otlp_endpoint == expected
    assert traces.configured(settings) is (expected is not None)


@pytest.mark.parametrize("value", ["otel-collector:4318", "grpc://collector:4317", "http://:4318"])
def test_a_bad_endpoint_stops_start_up_naming_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEARTH_SECRETS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", value)
    with pytest.raises(StartupError) as caught:
        load_settings()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in caught.value.message
    assert "4318" in caught.value.message


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        ("/livez", True),
        ("/readyz", True),
        ("/healthz", True),
        ("/metrics", True),
        ("/static/htmx.min.js", True),
        ("/health", False),
        ("/documents", False),
        ("/metrics/extra", False),
    ],
)
def test_probes_scrapes_and_static_files_are_left_out(path: str, *, left_out: bool) -> None:
    assert traces.untraced({"type": "http", "path": path}) is left_out


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line]


@pytest.mark.parametrize("trace_ids", [True, False])
def test_log_lines_written_in_a_span_carry_its_ids(*, trace_ids: bool) -> None:
    buffer = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=buffer, trace_ids=trace_ids)
    # A provider of the test's own: the processor reads the current span, whoever made it.
    tracer = TracerProvider().get_tracer("test")
    try:
        log = get_logger(f"hearth.test.trace_ids.{trace_ids}")
        log.info("before_the_span")
        with tracer.start_as_current_span("work") as span:
            log.info("inside_the_span")
            context = span.get_span_context()
    finally:
        configure_logging(level="WARNING", fmt="json")
    before, inside = _lines(buffer)
    assert "trace_id" not in before
    if trace_ids:
        assert inside["trace_id"] == format(context.trace_id, "032x")
        assert inside["span_id"] == format(context.span_id, "016x")
    else:
        assert "trace_id" not in inside


def test_the_service_is_service_name_unless_opentelemetry_names_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=home")
    ours = setup.resource(_settings(service_name="hearth-attic"), "web").attributes
    assert ours["service.name"] == "hearth-attic"
    assert ours["hearth.process"] == "web"
    assert ours["deployment.environment"] == "home"

    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-otel")
    named = setup.resource(_settings(service_name="hearth-attic"), "worker").attributes
    assert named["service.name"] == "from-otel"
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes")
    assert setup.resource(_settings(), "web").attributes["service.name"] == "from-attributes"
