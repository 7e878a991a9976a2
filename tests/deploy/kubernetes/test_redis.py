"""Redis: bundled with a password it reads from a file (a real redis-server started from the
rendered configuration refuses a client without it), untouched by Hearth's upgrades, or
external with its URL in a Secret."""

from __future__ import annotations

import copy
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.deploy.kubernetes.pods import redis_pod
from tests.support.kubernetes import (
    SECRET_NAMES,
    Rendered,
    hearth_secret,
    kinds,
    merged,
    named,
    one,
    pod_secret_files,
    pod_spec,
    render,
    secret_data,
)
from tests.support.services import free_port


def test_bundled_redis_requires_the_password_of_its_secret(default: Rendered) -> None:
    objects = default.objects
    password = secret_data(named(objects, "Secret", "hearth-redis"))["password"]
    assert len(password) >= 32
    statefulset = one(objects, "StatefulSet", "redis")
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
    conf = named(objects, "ConfigMap", "hearth-redis")["data"]["redis.conf"].splitlines()
    assert "protected-mode yes" in conf
    assert "maxmemory-policy noeviction" in conf
    assert "include /run/redis/auth.conf" in conf
    (redis_container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert password not in str(redis_container)  # neither its command line nor its probes
    for config in (o for o in objects if o["kind"] == "ConfigMap"):
        assert password not in str(config)
    # Hearth's pods read the URL with the password from the Secret, never from the ConfigMap.
    for component in ("api", "worker"):
        spec = pod_spec(objects, component)
        url = pod_secret_files(objects, spec)["REDIS_URL"]
        assert url == f"redis://:{password}@hearth-redis:6379/0"
    assert "REDIS_URL" not in named(objects, "ConfigMap", "hearth-config")["data"]


@pytest.mark.redis  # a redis-server of its own
def test_the_rendered_redis_refuses_a_client_without_the_password(
    default: Rendered, tmp_path: Path
) -> None:
    objects = default.objects
    statefulset = one(objects, "StatefulSet", "redis")
    port = free_port()
    url = pod_secret_files(objects, pod_spec(objects, "worker"))["REDIS_URL"]
    with redis_pod(statefulset, objects, tmp_path, port) as pod:
        with_password = redis.Redis.from_url(url.replace("hearth-redis:6379", f"127.0.0.1:{port}"))
        for _ in range(100):  # it starts in well under a second
            try:
                assert with_password.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as anonymous:
            anonymous.sendall(b"PING\r\n")
            assert anonymous.recv(100).startswith(b"-NOAUTH Authentication required")
        assert with_password.config_get("protected-mode") == {"protected-mode": "yes"}
        assert with_password.config_get("appendonly") == {"appendonly": "yes"}
        # The readiness probe's command passes against it.
        probe = pod.container["readinessProbe"]["exec"]["command"]
        done = subprocess.run([pod.moved(part) for part in probe], capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr
        with_password.close()
    # The password was written to the in-memory volume only, readable by its owner only.
    auth = tmp_path / "auth" / "auth.conf"
    assert oct(auth.stat().st_mode & 0o777) == "0o600"


@pytest.mark.redis  # a redis-server of its own
def test_the_kustomize_redis_refuses_its_placeholder(
    kustomized: list[dict[str, Any]], tmp_path: Path
) -> None:
    statefulset = one(kustomized, "StatefulSet", "redis")
    with redis_pod(statefulset, kustomized, tmp_path, free_port()) as pod:
        _, stderr = pod.server.communicate(timeout=30)
    assert pod.server.returncode == 1
    assert b"the password is still the placeholder" in stderr
    assert not (tmp_path / "auth" / "auth.conf").exists()


@pytest.mark.redis  # a redis-server of its own
def test_the_rendered_redis_refuses_an_empty_password(default: Rendered, tmp_path: Path) -> None:
    """A Secret edited by hand to an empty password would leave Redis open: it stops."""
    objects = copy.deepcopy(default.objects)
    named(objects, "Secret", "hearth-redis")["data"]["password"] = ""
    statefulset = one(objects, "StatefulSet", "redis")
    with redis_pod(statefulset, objects, tmp_path, free_port()) as pod:
        _, stderr = pod.server.communicate(timeout=30)
    assert pod.server.returncode == 1
    assert b"no password" in stderr


def test_upgrading_hearth_does_not_restart_redis_or_postgresql() -> None:
    older = render({"image": {"tag": "0.1.0"}}).objects
    newer = render({"image": {"tag": "0.2.0"}}).objects
    for component in ("redis", "postgresql"):
        old, new = (one(objects, "StatefulSet", component) for objects in (older, newer))
        assert old["spec"]["template"] == new["spec"]["template"], component
    assert pod_spec(older, "api")["containers"] != pod_spec(newer, "api")["containers"]


def test_external_redis_url_goes_to_the_secret(variants: dict[str, Rendered]) -> None:
    objects = variants["external-redis-url"].objects
    assert "StatefulSet" not in kinds(objects)
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "NetworkPolicy"} == {
        "hearth-api",
        "hearth-worker",
    }
    assert (
        secret_data(hearth_secret(objects))["REDIS_URL"] == "redis://:redis-pw-91c2@valkey:6379/0"
    )
    assert not SECRET_NAMES & set(named(objects, "ConfigMap", "hearth-config")["data"])


def test_external_redis_url_from_its_own_secret(variants: dict[str, Rendered]) -> None:
    objects = variants["external-redis-secret"].objects
    for component in ("api", "worker"):
        files = pod_secret_files(objects, pod_spec(objects, component), absent={"valkey"})
        assert files["REDIS_URL"] == "valkey/REDIS_URL"


def test_a_given_redis_password_is_used() -> None:
    objects = render(merged({}, {"redis": {"auth": {"password": "given-0123456789"}}})).objects
    stored = secret_data(named(objects, "Secret", "hearth-redis"))
    assert stored == {
        "password": "given-0123456789",
        "uri": "redis://:given-0123456789@hearth-redis:6379/0",
    }
