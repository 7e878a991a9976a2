"""Every deployment gives a stopping worker the time Hearth says it needs
(``STOP_BOUND_SECONDS``: the call to the model in flight, then a margin to store its batch and
close). Less, and Docker, systemd or Kubernetes kill a worker mid-batch; more only delays a
restart."""

from __future__ import annotations

from typing import Any

import yaml

from hearth.documents.embedding import STORE_RETRY_SECONDS
from hearth.llm.adapter import EMBED_TIMEOUT_SECONDS
from hearth.llm.http import CHECK_TIMEOUT_SECONDS
from hearth.worker.run import STOP_BOUND_SECONDS
from tests.support.paths import ROOT


def _yaml(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def _timeout_stop(path: str) -> list[str]:
    lines = (ROOT / path).read_text().splitlines()
    return [line.split("=", 1)[1] for line in lines if line.startswith("TimeoutStopSec=")]


def test_the_bound_covers_one_call_to_the_model_and_storing_its_batch() -> None:
    """A run asks the LLM's check, makes one call, and may store its batch across a
    database restart; a few seconds more to acknowledge it and close."""
    needed = CHECK_TIMEOUT_SECONDS + EMBED_TIMEOUT_SECONDS + STORE_RETRY_SECONDS
    assert needed + 5 <= STOP_BOUND_SECONDS


def test_compose_gives_the_worker_the_bound() -> None:
    compose = _yaml("docker-compose.yml")
    assert compose["services"]["worker"]["stop_grace_period"] == f"{STOP_BOUND_SECONDS}s"


def test_systemd_gives_the_worker_the_bound() -> None:
    """The worker's unit, and the embedded drop-in whose hearth.service runs a worker."""
    assert _timeout_stop("deploy/systemd/hearth-worker.service") == [f"{STOP_BOUND_SECONDS}s"]
    embedded = "deploy/systemd/hearth.service.d/embedded.conf"
    assert _timeout_stop(embedded) == [f"{STOP_BOUND_SECONDS}s"]


def test_kubernetes_gives_the_worker_the_bound() -> None:
    """The kustomize base's Deployment, and the chart's default (its template uses it)."""
    deployment = _yaml("deploy/kubernetes/worker-deployment.yaml")
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == (
        STOP_BOUND_SECONDS
    )
    values = _yaml("deploy/helm/hearth/values.yaml")
    assert values["worker"]["terminationGracePeriodSeconds"] == STOP_BOUND_SECONDS
    template = (ROOT / "deploy/helm/hearth/templates/worker-deployment.yaml").read_text()
    assert "terminationGracePeriodSeconds: {{ $worker.terminationGracePeriodSeconds }}" in template
