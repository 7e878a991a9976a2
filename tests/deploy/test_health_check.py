"""scripts/health-check.sh: a readable summary and the Nagios exit status (0 ok, 1 degraded,
2 down or no answer, 3 unknown), against a real `hearth serve` and against doubles that
answer what a real one cannot be made to answer on cue."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.process import clean_environment, hearth_server
from tests.support.services import REDIS_URL, free_port, serving
from tests.support.worker import hearth_worker

SCRIPT = ROOT / "scripts" / "health-check.sh"


def _check(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", **env},
    )


@contextmanager
def _answering(status: int, body: str, seen: list[str] | None = None) -> Iterator[str]:
    """An HTTP server that answers every GET with ``status`` and ``body``; yields its URL.
    Each request's ``Authorization`` header (or "") is appended to ``seen``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if seen is not None:
                seen.append(self.headers.get("Authorization", ""))
            payload = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    with serving(http.server.HTTPServer(("127.0.0.1", 0), Handler)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


def _report(status: str) -> str:
    return json.dumps(
        {
            "status": status,
            "version": "9.9.9",
            "checks": {
                "db": {
                    "status": "unreachable" if status == "down" else "ok",
                    "detail": "connection refused",
                    "latency_ms": 3.2,
                },
                "llm": {"status": "unconfigured", "detail": "no LLM endpoint", "latency_ms": 0.0},
            },
        },
        separators=(",", ":"),
    )


@pytest.mark.redis
@pytest.mark.worker
def test_a_healthy_hearth_exits_0_with_a_summary(fresh_database: str, tmp_path: Path) -> None:
    env = clean_environment(
        DATABASE_URL=fresh_database, REDIS_URL=REDIS_URL, WORKER_HEARTBEAT_SECONDS="1"
    )
    with hearth_server(env, tmp_path, free_port()) as server, hearth_worker(env, tmp_path):
        server.wait_until("/readyz")
        result = _check("--url", server.url)
        # The worker may start before the server has migrated the fresh database: its first
        # heartbeat then fails, and the next one comes a heartbeat interval later.
        deadline = time.monotonic() + 30
        while result.returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            result = _check("--url", server.url)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("OK: hearth ")
        assert lines[0].endswith(f"{server.url}/health")
        assert any(line.split()[:2] == ["db", "ok"] for line in lines[1:]), result.stdout
        assert any(line.split()[:2] == ["worker", "ok"] for line in lines[1:]), result.stdout

        ready = _check("--url", server.url, "--ready")
        assert (ready.returncode, ready.stdout) == (
            0,
            f"OK: {server.url}/readyz answered 200 (ready)\n",
        )
        raw = _check("--url", server.url, "--json")
        assert raw.returncode == 0
        assert json.loads(raw.stdout)["status"] == "ok"
        assert _check("--url", server.url, "--quiet").stdout == ""


@pytest.mark.parametrize(
    ("status", "code", "first_line"),
    [("ok", 0, "OK"), ("degraded", 1, "DEGRADED"), ("down", 2, "DOWN")],
)
def test_the_exit_status_follows_the_overall_status(
    status: str, code: int, first_line: str
) -> None:
    with _answering(200, _report(status)) as url:
        result = _check("--url", url)
    assert result.returncode == code, result.stdout + result.stderr
    assert result.stdout.startswith(f"{first_line}: hearth 9.9.9 at {url}/health\n")
    assert "connection refused" in result.stdout


def test_details_withheld_from_an_anonymous_caller_print_as_nothing() -> None:
    """An anonymous caller gets ``"detail": null`` (HEALTH_DETAILS): the summary leaves the
    column empty rather than printing ``None``. With HEARTH_TOKEN the script sends it."""
    report = json.loads(_report("degraded"))
    for check in report["checks"].values():
        check["detail"] = None
    seen: list[str] = []
    with _answering(200, json.dumps(report), seen) as url:
        result = _check("--url", url)
        with_token = _check("--url", url, "--ready", HEARTH_TOKEN="hearth_read_0123456789")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["db", "ok", "3", "ms"]
    assert "None" not in result.stdout
    assert with_token.returncode == 0, with_token.stdout + with_token.stderr
    assert seen == ["", "Bearer hearth_read_0123456789"]


def test_without_python_the_status_still_decides(tmp_path: Path) -> None:
    # A PATH with the tools the script uses, and no python3.
    for tool in ("bash", "curl", "sed", "head", "mktemp", "rm", "cat"):
        found = shutil.which(tool)
        assert found, tool
        (tmp_path / tool).symlink_to(found)
    with _answering(200, _report("degraded")) as url:
        result = subprocess.run(
            [str(SCRIPT), "--url", url],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": str(tmp_path)},
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith(f"DEGRADED: {url}/health: {{")


def test_not_ready_no_answer_and_not_hearth() -> None:
    with _answering(503, '{"status":"starting","detail":"migrations running"}') as url:
        result = _check("--url", url, "--ready")
    assert result.returncode == 2
    assert result.stdout.startswith(f"DOWN: {url}/readyz answered 503: ")
    assert "migrations running" in result.stdout

    closed = f"http://127.0.0.1:{free_port()}"
    result = _check("--url", closed, "--timeout", "2")
    assert result.returncode == 2
    assert result.stdout.startswith(f"DOWN: {closed}/health does not answer (")

    with _answering(200, '{"hello": "world"}') as url:
        result = _check("--url", url)
    assert result.returncode == 3
    assert "not a Hearth health report" in result.stdout


def test_bad_arguments_exit_3_with_the_usage() -> None:
    for args in (["--bogus"], ["--url", "ftp://x"], ["--timeout", "soon"], ["--url"]):
        result = _check(*args)
        assert result.returncode == 3, args
        assert result.stderr, args
    assert _check("--help").stdout.startswith("usage: health-check.sh")
