"""KEDA (off by default): a ScaledObject scales the worker Deployment on the Redis lists of
Hearth's Celery queues, authenticated with the bundled Redis's password; it passes KEDA's CRDs
(tests/deploy/crds/), and replaces the worker's replica count and CPU autoscaler."""

from __future__ import annotations

import copy
from typing import Any

from hearth.worker.app import DEFAULT_QUEUE, EMBEDDING_QUEUE
from tests.support.kubernetes import (
    VALUES,
    Rendered,
    keda_errors,
    kinds,
    named,
    one,
    render,
    secret_data,
)

KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}


def test_keda_is_off_by_default(default: Rendered, kustomized: list[dict[str, Any]]) -> None:
    for objects in (default.objects, kustomized):
        assert not KEDA_KINDS & set(kinds(objects))
    assert "replicas" in one(default.objects, "Deployment", "worker")["spec"]


def test_the_scaled_object_scales_the_workers_on_their_queues(
    variants: dict[str, Rendered],
) -> None:
    objects = variants["keda"].objects
    scaled = named(objects, "ScaledObject", "hearth-worker")
    worker = one(objects, "Deployment", "worker")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": worker["metadata"]["name"],
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 5)
    assert "replicas" not in worker["spec"]  # KEDA decides
    assert "HorizontalPodAutoscaler" not in kinds(objects)
    # Each queue the worker takes from, as the Redis list Celery keeps it in.
    queues = {trigger["metadata"]["listName"] for trigger in spec["triggers"]}
    assert queues == {DEFAULT_QUEUE, EMBEDDING_QUEUE}
    redis_service = named(objects, "Service", "hearth-redis")
    authentication = named(objects, "TriggerAuthentication", "hearth-worker")
    (reference,) = authentication["spec"]["secretTargetRef"]
    stored = secret_data(named(objects, "Secret", reference["name"]))
    # The same server, database and password as Hearth's REDIS_URL.
    assert stored["uri"].endswith("@hearth-redis:6379/0")
    assert reference == {"parameter": "password", "name": "hearth-redis", "key": "password"}
    for trigger in spec["triggers"]:
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["address"] == (
            f"{redis_service['metadata']['name']}.home.svc:6379"
        )
        assert trigger["metadata"]["databaseIndex"] == "0"
        assert trigger["authenticationRef"] == {"name": authentication["metadata"]["name"]}


def test_keda_s_objects_pass_its_crds(variants: dict[str, Rendered]) -> None:
    objects = variants["keda"].objects
    for kind in KEDA_KINDS:
        assert keda_errors(named(objects, kind, "hearth-worker")) == []
    assert set(kinds(render(VALUES["raspberry-pi"]).objects)) >= KEDA_KINDS


def test_the_crd_validation_refuses_what_the_api_server_would(
    variants: dict[str, Rendered],
) -> None:
    scaled = copy.deepcopy(named(variants["keda"].objects, "ScaledObject", "hearth-worker"))
    scaled["spec"]["maxReplicas"] = 5  # the field is maxReplicaCount
    scaled["spec"]["triggers"][0]["metadata"]["listLength"] = 5  # metadata values are strings
    errors = "\n".join(keda_errors(scaled))
    assert "maxReplicas" in errors
    assert "5 is not of type 'string'" in errors
    del scaled["spec"]["scaleTargetRef"]
    assert "'scaleTargetRef' is a required property" in "\n".join(keda_errors(scaled))
