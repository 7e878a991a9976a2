"""Run the real ``hearth`` command as a separate process and read what it logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from hearth.config.settings import Settings, env_names
from tests.support.paths import ROOT

HEARTH = str(Path(sys.executable).with_name("hearth"))
TEST_SECRET_KEY = "test-only-secret-key-that-is-long-enough-0123456789"

# Variables the suite's processes must not inherit from whoever runs the tests: every name a
# setting is read from (so a setting added later is covered too), and where secret files are.
_HEARTH_VARIABLES = frozenset(
    {name for field, info in Settings.model_fields.items() for name in env_names(field, info)}
    | {"HEARTH_SECRETS_DIR", "CREDENTIALS_DIRECTORY"}
)


def clean_environment(**overrides: str) -> dict[str, str]:
    """The current environment without any Hearth setting, plus ``overrides``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _HEARTH_VARIABLES and not k.endswith("_FILE")
    }
    env.update({"LOG_FORMAT": "json", "SECRET_KEY": TEST_SECRET_KEY})
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def printed_json(code: str, cwd: Path, tag: str, *args: str, **env: str) -> Any:
    """Run ``code`` in a fresh interpreter (``json`` and ``sys`` imported, ``args`` in
    ``sys.argv[1:]``, the repository importable, ``env`` over a clean environment); it must
    exit 0. The JSON it printed on the line that starts with ``tag``."""
    command = [sys.executable, "-c", "import json, sys\n" + textwrap.dedent(code), *args]
    return json_printed_by(command, clean_environment(**env), cwd, tag)


def json_printed_by(command: Sequence[str], env: Mapping[str, str], cwd: Path, tag: str) -> Any:
    """Run ``command`` with ``env`` (and the repository importable); it must exit 0. The
    JSON it printed on the line that starts with ``tag``."""
    done = subprocess.run(
        command,
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    [line] = [line for line in done.stdout.splitlines() if line.startswith(f"{tag} ")]
    return json.loads(line.removeprefix(f"{tag} "))


def run_hearth(
    *args: str, env: Mapping[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a ``hearth`` command to completion."""
    return subprocess.run(
        [HEARTH, *args], env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every JSON log line in ``text``; anything else is a failure (no stray tracebacks)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class HearthServer:
    """A ``hearth serve`` process, its URL and its output."""

    def __init__(self, process: subprocess.Popen[str], url: str, output: Path) -> None:
        self.process = process
        self.url = url
        self.output = output
        # Sent with every request of ``get`` (a test adds its API token here).
        self.headers: dict[str, str] = {}

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers, timeout=10)

    def logs(self) -> list[dict[str, Any]]:
        return json_lines(self.output.read_text())

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.logs() if line.get("event") == name]

    def wait_until(self, path: str, status: int = 200, timeout: float = 60) -> httpx.Response:
        """Poll ``path`` until it answers ``status``; fail with the output if it never does."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"hearth exited with {self.process.returncode}:\n{self.output.read_text()}"
                )
            try:
                response = self.get(path)
                if response.status_code == status:
                    return response
                last = response.text
            except httpx.TransportError as exc:
                last = exc
            time.sleep(0.1)
        raise AssertionError(
            f"{path} never answered {status} (last: {last}):\n{self.output.read_text()}"
        )

    def wait_for_check(self, name: str, status: str = "ok", timeout: float = 60) -> dict[str, Any]:
        """Poll /health until its check ``name`` reports ``status``; return that check. Fail
        with the last answer, and the server's output, if it never does."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"hearth exited with {self.process.returncode}:\n{self.output.read_text()}"
                )
            check: dict[str, Any] = self.get("/health").json()["checks"][name]
            if check["status"] == status:
                return check
            last = check
            time.sleep(0.2)
        raise AssertionError(
            f"/health never reported {name} {status} in {timeout:g} s (last: {last}):\n"
            f"{self.output.read_text()}"
        )

    def wait_for_event(self, name: str, timeout: float = 60) -> dict[str, Any]:
        """Wait until the server has logged ``name``; return that line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = [line for line in self._partial_logs() if line.get("event") == name]
            if lines:
                return lines[0]
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {name} event:\n{self.output.read_text()}")

    def _partial_logs(self) -> list[dict[str, Any]]:
        # The last line may still be half written.
        return [json.loads(line) for line in self.output.read_text().splitlines()[:-1] if line]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


@contextmanager
def hearth_server(
    env: Mapping[str, str],
    cwd: Path,
    port: int,
    *,
    user: str | None = None,
    executable: str = HEARTH,
    args: Sequence[str] = (),
) -> Iterator[HearthServer]:
    """Start ``hearth serve`` on ``port`` (with ``args``, e.g. ``--with-worker``); stop it
    (SIGTERM, then SIGKILL) on exit."""
    output = cwd / f"hearth-{port}.log"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [executable, "serve", "--port", str(port), *args],
            env=dict(env),
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            user=user,
        )
    server = HearthServer(process, f"http://127.0.0.1:{port}", output)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
