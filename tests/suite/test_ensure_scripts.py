"""scripts/ensure-redis.sh and scripts/ensure-postgres.sh, which `make test` runs first: as
root they start what does not answer; as anyone else they stop and name the command; a URL
they cannot serve is refused, saying why. Installing with apt-get is what
scripts/pristine-check.sh shows, on a fresh Debian."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.paths import ROOT
from tests.support.services import free_port

SCRIPTS = ("ensure-redis.sh", "ensure-postgres.sh", "apt-install.sh")


def _run(script: Path, user: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script)],
        env={"PATH": os.environ["PATH"], **env},
        user=user,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def scripts() -> Iterator[Path]:
    """The scripts, where any user may run them (the checkout may sit in root's home)."""
    directory = Path(tempfile.mkdtemp(prefix="hearth-ensure-")) / "scripts"
    directory.parent.chmod(0o755)
    directory.mkdir(mode=0o755)
    for name in SCRIPTS:
        shutil.copy2(ROOT / "scripts" / name, directory / name)
    yield directory
    shutil.rmtree(directory.parent)


@pytest.mark.redis
@pytest.mark.skipif(os.geteuid() != 0, reason="starting a server for the tests is root's part")
def test_as_root_a_redis_is_started_where_none_answers(scripts: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    result = _run(scripts / "ensure-redis.sh", TEST_REDIS_URL=url)
    client = redis.Redis.from_url(url)
    try:
        assert result.returncode == 0, result.stderr
        assert f"Started redis-server on 127.0.0.1:{port} for the tests" in result.stdout
        assert client.ping()
        assert client.config_get("save") == {"save": ""}  # nothing written to disk
        again = _run(scripts / "ensure-redis.sh", TEST_REDIS_URL=url)
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    finally:
        client.shutdown(nosave=True)  # quiet when nothing runs there


def test_as_another_user_the_scripts_name_the_command(scripts: Path) -> None:
    # Root runs them as nobody; anyone else is another user already.
    user = "nobody" if os.geteuid() == 0 else None
    port = free_port()
    redis_result = _run(
        scripts / "ensure-redis.sh", user, TEST_REDIS_URL=f"redis://127.0.0.1:{port}/0"
    )
    assert redis_result.returncode == 1
    assert "nothing answers there" in redis_result.stderr
    assert f"redis-server --daemonize yes --bind 127.0.0.1 --port {port} --save ''" in (
        redis_result.stderr
    )

    postgres = _run(
        scripts / "ensure-postgres.sh",
        user,
        TEST_POSTGRES_URL=f"postgresql://postgres@127.0.0.1:{port}/postgres",
    )
    assert postgres.returncode == 1
    assert f"the tests need PostgreSQL at 127.0.0.1:{port}" in postgres.stderr
    assert "host    all    postgres    127.0.0.1/32    trust" in postgres.stderr
    assert "Traceback" not in redis_result.stderr + postgres.stderr


def test_a_url_they_cannot_serve_is_refused(scripts: Path) -> None:
    # A name that never resolves: nothing is sent anywhere.
    far = _run(scripts / "ensure-redis.sh", TEST_REDIS_URL="redis://db.invalid:6379/0")
    assert far.returncode == 1
    assert "nothing answers at TEST_REDIS_URL=redis://db.invalid:6379/0" in far.stderr
    wrong = _run(scripts / "ensure-redis.sh", TEST_REDIS_URL="http://127.0.0.1:6379")
    assert (wrong.returncode, wrong.stderr) == (
        1,
        "error: TEST_REDIS_URL=http://127.0.0.1:6379 is not a redis:// URL.\n",
    )
    far_postgres = _run(
        scripts / "ensure-postgres.sh",
        TEST_POSTGRES_URL="postgresql://postgres@db.invalid:5432/postgres",
    )
    assert far_postgres.returncode == 1
    assert "nothing answers at TEST_POSTGRES_URL=" in far_postgres.stderr
