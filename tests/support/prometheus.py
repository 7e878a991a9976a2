"""A real Prometheus (Debian's package, installed by ``scripts/ensure-prometheus.sh``) that
scrapes a Hearth under test: a private server on loopback, on a free port, with its own
configuration and data directory under a directory of the test's, presenting a bearer token
from a credentials file as an operator's scrape config would. Asked through its HTTP API.
Also promtool, and a reader of the exposition format for tests that look at it directly."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.services import free_port

PROMETHEUS = os.environ.get("HEARTH_PROMETHEUS", "/usr/bin/prometheus")
PROMTOOL = os.environ.get("HEARTH_PROMTOOL", "/usr/bin/promtool")
START_SECONDS = 30.0

Labels = dict[str, str]


def samples(exposition: str, name: str) -> list[tuple[Labels, float]]:
    """Each sample called ``name`` in a Prometheus text exposition: (labels, value)."""
    return [
        (dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    ]


class Prometheus:
    """A running Prometheus: its URL, and queries through its HTTP API."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, home: Path) -> None:
        self.process = process
        self.url = url
        self.home = home

    def query(self, expression: str) -> list[tuple[Labels, float]]:
        """The instant vector ``expression`` evaluates to now: (labels, value) each."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=10)
        answer: dict[str, Any] = response.json()
        assert answer["status"] == "success", answer
        assert answer["data"]["resultType"] == "vector", answer
        return [(item["metric"], float(item["value"][1])) for item in answer["data"]["result"]]

    def targets(self) -> list[dict[str, Any]]:
        """The scrape targets and their health, as /api/v1/targets lists them."""
        answer = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
        active: list[dict[str, Any]] = answer["data"]["activeTargets"]
        return active

    def wait_for(
        self,
        expression: str,
        holds: Callable[[list[tuple[Labels, float]]], bool] = bool,
        timeout: float = 60,
    ) -> list[tuple[Labels, float]]:
        """Query ``expression`` until its result ``holds``; fail with the last result, the
        targets' state and the server's log if it never does."""
        deadline = time.monotonic() + timeout
        result: list[tuple[Labels, float]] = []
        while time.monotonic() < deadline:
            result = self.query(expression)
            if holds(result):
                return result
            time.sleep(0.5)
        raise AssertionError(
            f"{expression} never held in {timeout:g} s; last result {result}\n"
            f"targets: {json.dumps(self.targets(), indent=1)}\n"
            f"log:\n{(self.home / 'prometheus.log').read_text()[-3000:]}"
        )


def _config(targets: Sequence[str], token_file: Path) -> str:
    listed = ", ".join(f"'{target}'" for target in targets)
    return f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: hearth
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {token_file}
    static_configs:
      - targets: [{listed}]
"""


@contextmanager
def running_prometheus(targets: Sequence[str], token: str, home: Path) -> Iterator[Prometheus]:
    """Prometheus scraping ``targets`` (host:port) every second with ``token``, until exit."""
    home.mkdir(parents=True, exist_ok=True)
    token_file = home / "hearth-token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    config = home / "prometheus.yml"
    config.write_text(_config(targets, token_file))
    port = free_port()
    with (home / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=home,
        )
    server = Prometheus(process, f"http://127.0.0.1:{port}", home)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(server: Prometheus) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            if httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(
        f"Prometheus did not get ready:\n{(server.home / 'prometheus.log').read_text()}"
    )


@pytest.fixture
def start_prometheus(
    tmp_path: Path,
) -> Callable[[Sequence[str], str], AbstractContextManager[Prometheus]]:
    """A private Prometheus, started by the function this returns: targets and a token."""

    def start(targets: Sequence[str], token: str) -> AbstractContextManager[Prometheus]:
        return running_prometheus(targets, token, tmp_path / "prometheus")

    return start


@pytest.fixture
def promtool() -> str:
    """The path of promtool."""
    return PROMTOOL
