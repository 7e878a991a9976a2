"""The bundled PostgreSQL: in the release unless an external database is given, from the
pinned pgvector image, locked down, probed and stopped as PostgreSQL wants, reached by
Hearth's own role. Its first start for real: test_the_release_runs.py."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from tests.support.kubernetes import (
    PINNED_IMAGE,
    Rendered,
    merged,
    named,
    one,
    pod_secret_files,
    pod_spec,
    render,
    secret_data,
)


def _postgresql(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objects, "StatefulSet", "postgresql")


def _env(statefulset: dict[str, Any]) -> dict[str, str]:
    (server,) = statefulset["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in server["env"]}


def test_the_default_release_runs_postgresql_with_pgvector(default: Rendered) -> None:
    objects = default.objects
    statefulset = _postgresql(objects)
    spec = statefulset["spec"]["template"]["spec"]
    (server,) = spec["containers"]
    assert PINNED_IMAGE.match(server["image"]), server["image"]
    assert server["image"].startswith("docker.io/pgvector/pgvector:")
    env = _env(statefulset)
    assert "--data-checksums" in shlex.split(env["POSTGRES_INITDB_ARGS"])
    assert env["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/postgresql/")
    assert "POSTGRES_PASSWORD" not in env
    # The image's postgres user, on a volume made writable for it.
    assert spec["securityContext"]["runAsUser"] == 999
    assert spec["securityContext"]["fsGroup"] == 999
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    writable = {m["mountPath"] for m in server["volumeMounts"] if not m.get("readOnly")}
    assert {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"} <= writable
    assert env["PGDATA"].startswith("/var/lib/postgresql/data/")
    # Ready when it answers over TCP as Hearth connects, not during initdb's socket-only run.
    assert server["readinessProbe"]["exec"]["command"][:2] == ["pg_isready", "--host=127.0.0.1"]
    assert server["resources"]["requests"]["memory"]
    assert server["resources"]["limits"]["memory"]
    # A fast shutdown on stop, within the grace period.
    stop = " ".join(server["lifecycle"]["preStop"]["exec"]["command"])
    assert "pg_ctl stop" in stop
    assert "--mode=fast" in stop
    timeout = int(stop.split("--timeout=")[1].split()[0])
    assert timeout < spec["terminationGracePeriodSeconds"]
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    service = named(objects, "Service", "hearth-postgresql")
    assert service["spec"]["ports"][0]["port"] == 5432


def test_hearth_reaches_it_with_its_own_role(default: Rendered) -> None:
    objects = default.objects
    stored = secret_data(named(objects, "Secret", "hearth-postgresql"))
    assert stored["uri"] == (
        f"postgresql://hearth:{stored['password']}@hearth-postgresql:5432/hearth"
    )
    assert stored["password"] != stored["postgres-password"]
    for component in ("api", "worker"):
        files = pod_secret_files(objects, pod_spec(objects, component))
        assert files["DATABASE_URL"] == stored["uri"]


@pytest.mark.parametrize(
    "external",
    [
        {"database": {"url": "postgresql://hearth:pw@db.example.org:5432/hearth"}},
        {"database": {"existingSecret": "hearth-db-app", "existingSecretKey": "uri"}},
        {"postgresql": {"enabled": False}, "database": {"existingSecret": "db"}},
    ],
)
def test_an_external_database_leaves_it_out(external: dict[str, Any]) -> None:
    objects = render(external).objects
    assert not [o for o in objects if "postgresql" in o["metadata"]["name"]]


def test_given_passwords_are_used() -> None:
    auth = {"password": "hearth-given-0123456789", "postgresPassword": "super-given-0123456789"}
    objects = render(merged({}, {"postgresql": {"auth": auth}})).objects
    stored = secret_data(named(objects, "Secret", "hearth-postgresql"))
    assert stored["password"] == auth["password"]
    assert stored["postgres-password"] == auth["postgresPassword"]
    assert ":hearth-given-0123456789@" in stored["uri"]
