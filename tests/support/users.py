"""Running Hearth as an ordinary user when the suite runs as root.

The suite's own virtualenv lives on root's Python, which other users cannot reach, so the
ordinary user gets a virtualenv of its own: Debian's Python, the locked requirements and a
built Hearth, installed the way a user would install it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[2]
USER = "hearth-tester"


def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", USER], check=True
        )
        return pwd.getpwnam(USER)


def uv_executable() -> str:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(ROOT / ".tools/bin/uv")):
        if candidate and Path(candidate).exists():
            return candidate
    raise AssertionError("uv not found: run the tests through `make test`")


def _python() -> str:
    for candidate in ("/usr/bin/python3.11", "/usr/bin/python3"):
        if Path(candidate).exists():
            return candidate
    raise AssertionError("no system Python 3.11+ at /usr/bin/python3 for the ordinary user")


def build_user_venv() -> Path:
    """A virtualenv anyone can run, with Hearth installed from this checkout."""
    home = Path(tempfile.mkdtemp(prefix="hearth-user-"))
    home.chmod(0o755)
    venv = home / "venv"
    uv = uv_executable()
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([uv, "venv", "--quiet", "--python", _python(), str(venv)], check=True, env=env)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", python, "-r", str(ROOT / "requirements.txt")],
        check=True,
        env=env,
    )
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", python, "--no-deps", str(ROOT)],
        check=True,
        env=env,
    )
    return venv


def private_dir(owner: pwd.struct_passwd) -> Path:
    """A fresh directory owned by ``owner`` and reachable by it."""
    path = Path(tempfile.mkdtemp(prefix="hearth-data-"))
    path.chmod(0o755)
    os.chown(path, owner.pw_uid, owner.pw_gid)
    return path
