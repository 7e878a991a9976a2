"""Mail servers for the ``mail`` check's tests: a real IMAP server (a private Dovecot on
loopback) and, for what cannot run here, a double of Google's OAuth 2.0 token endpoint that
speaks its real wire protocol.

Dovecot is Debian's (``dovecot-imapd``, installed by ``scripts/ensure-dovecot.sh``); the
tests run an instance of their own, with its own configuration, certificates, users and
mail under a temporary directory. They never use or change the system's service or
/etc/dovecot.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tests.support.services import free_port, serving

DOVECOT = os.environ.get("HEARTH_DOVECOT", "/usr/sbin/dovecot")
HOW_TO_INSTALL = "run scripts/ensure-dovecot.sh (as root it installs Debian's dovecot-imapd)"
START_SECONDS = 15.0


# --- Google's token endpoint ---------------------------------------------------------------


class FakeGoogleTokenEndpoint(ThreadingHTTPServer):
    """``POST /token`` answered as Google answers a refresh-token grant: the form-encoded
    request is checked against the client and refresh token it knows (``invalid_client``,
    HTTP 401; ``invalid_grant``, HTTP 400, also once ``revoked``); a good one gets a fresh
    access token. ``mode``: ``ok`` (the protocol), ``garbage`` (HTML instead of JSON) or
    ``slow`` (answers after ``delay`` seconds)."""

    daemon_threads = True

    def __init__(self, client_id: str, client_secret: str, refresh_token: str) -> None:
        super().__init__(("127.0.0.1", 0), _TokenHandler)
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.revoked = False
        self.mode = "ok"
        self.delay = 0.0
        self.requests: list[dict[str, str]] = []
        self.content_types: list[str] = []
        self.issued: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/token"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a slow answer is what the timeout test wants.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _TokenHandler(BaseHTTPRequestHandler):
    server: FakeGoogleTokenEndpoint

    def do_POST(self) -> None:
        endpoint = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        form = dict(parse_qsl(body, keep_blank_values=True))
        endpoint.requests.append(form)
        endpoint.content_types.append(self.headers.get("Content-Type", ""))
        if endpoint.mode == "slow":
            time.sleep(endpoint.delay)
        if self.path != "/token":
            self._json(404, {"error": "not_found"})
        elif endpoint.mode == "garbage":
            self._send(200, "text/html", b"<html><body>Sign in - Google Accounts</body></html>")
        elif not self.headers.get("Content-Type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            self._error(400, "invalid_request", "Invalid content type.")
        elif form.get("grant_type") != "refresh_token":
            self._error(400, "unsupported_grant_type", "Invalid grant_type: ")
        elif (form.get("client_id"), form.get("client_secret")) != (
            endpoint.client_id,
            endpoint.client_secret,
        ):
            self._error(401, "invalid_client", "The OAuth client was not found.")
        elif endpoint.revoked or form.get("refresh_token") != endpoint.refresh_token:
            self._error(400, "invalid_grant", "Token has been expired or revoked.")
        else:
            access_token = "ya29." + secrets.token_urlsafe(32)
            endpoint.issued.append(access_token)
            self._json(
                200,
                {
                    "access_token": access_token,
                    "expires_in": 3599,
                    "scope": "https://mail.google.com/",
                    "token_type": "Bearer",
                },
            )

    def _error(self, status: int, error: str, description: str) -> None:
        self._json(status, {"error": error, "error_description": description})

    def _json(self, status: int, body: dict[str, object]) -> None:
        self._send(status, "application/json; charset=utf-8", json.dumps(body).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        # Silences the default stderr log.
        pass


@contextmanager
def fake_token_endpoint(
    client_id: str, client_secret: str, refresh_token: str
) -> Iterator[FakeGoogleTokenEndpoint]:
    with serving(FakeGoogleTokenEndpoint(client_id, client_secret, refresh_token)) as server:
        yield server


# Shaped like Google's, so the adapter's shortening of the client id is exercised.
GMAIL_CLIENT_ID = "123456789012-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d.apps.googleusercontent.com"


@pytest.fixture
def token_endpoint() -> Iterator[FakeGoogleTokenEndpoint]:
    """A fresh token endpoint double knowing one client and one refresh token (random)."""
    with fake_token_endpoint(
        GMAIL_CLIENT_ID, "GOCSPX-" + secrets.token_urlsafe(21), "1//" + secrets.token_urlsafe(64)
    ) as endpoint:
        yield endpoint


# --- Dovecot ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImapServer:
    """A running private Dovecot: IMAP (plain and STARTTLS) on ``port``, implicit TLS on
    ``tls_port``, one user, and the CA that signed its certificate (for localhost and
    127.0.0.1)."""

    host: str
    port: int
    tls_port: int
    user: str
    password: str
    ca_file: Path
    log_file: Path


@contextmanager
def private_dovecot() -> Iterator[ImapServer]:
    """Start a Dovecot of the tests' own on 127.0.0.1 and stop it on exit."""
    if problem := missing_programs():
        raise AssertionError(problem)
    root = Path(tempfile.mkdtemp(prefix="hearth-dovecot-"))
    try:
        server = _configure(root)
        with _running(root, server):
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[ImapServer]:
    """One private Dovecot for the session. Missing Dovecot fails the test: never a skip."""
    yield from _dovecot_fixture()


@pytest.fixture
def own_dovecot() -> Iterator[ImapServer]:
    """A private Dovecot for one test, for failed logins: after one, Dovecot delays the
    next logins from the same address (2 s, doubling up to 15 s), which would slow down, or
    time out, the tests that follow on a shared server."""
    yield from _dovecot_fixture()


def _dovecot_fixture() -> Iterator[ImapServer]:
    if problem := missing_programs():
        pytest.fail(problem, pytrace=False)
    with private_dovecot() as server:
        yield server


def missing_programs() -> str | None:
    """What the private Dovecot needs and cannot find, and how to get it."""
    if not (Path(DOVECOT).is_file() and os.access(DOVECOT, os.X_OK)):
        return f"The mail tests need Dovecot at {DOVECOT}; {HOW_TO_INSTALL}."
    if shutil.which("openssl") is None:
        return "The mail tests need the openssl command (Debian's openssl package)."
    return None


def _configure(root: Path) -> ImapServer:
    """Write the certificates, the user and the configuration under ``root``."""
    # As root, Dovecot drops to unprivileged users: ``dovecot`` and ``dovenull`` (which the
    # package creates) for its own processes, ``nobody`` for the mail, as Dovecot advises
    # against its internal user owning mail. Not as root, all of it runs as the caller.
    as_root = os.geteuid() == 0
    if as_root:
        internal, login, mail_owner = "dovecot", "dovenull", pwd.getpwnam("nobody")
    else:
        mail_owner = pwd.getpwuid(os.geteuid())
        internal = login = mail_owner.pw_name
    internal_group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
    # The auth process reads the users file as ``internal``; the temporary directory is
    # created private (0700).
    root.chmod(0o755)
    ca_file, cert_file, key_file = _certificates(root)

    user, password = "alice@example.test", "imap-" + secrets.token_urlsafe(12)
    home = root / "home" / "alice"
    home.mkdir(parents=True)
    if as_root:
        os.chown(home, mail_owner.pw_uid, mail_owner.pw_gid)
    users = root / "users"
    uid, gid = mail_owner.pw_uid, mail_owner.pw_gid
    users.write_text(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{home}::\n")
    users.chmod(0o644)

    port, tls_port = free_port(), free_port()
    log_file = root / "dovecot.log"
    (root / "run").mkdir()
    (root / "state").mkdir()
    # Chroot needs root: without it, the services that would use one run unconfined.
    confined = () if as_root else ("anvil", "ipc", "imap-login")
    unconfined = "".join(f"service {name} {{\n  chroot =\n}}\n" for name in confined)
    (root / "dovecot.conf").write_text(
        f"""\
# A private test instance (tests/support/mail.py): nothing here touches the system's.
instance_name = hearth-test-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {log_file}
listen = 127.0.0.1
protocols = imap
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = {uid}
last_valid_uid = {uid}

ssl = yes
ssl_cert = <{cert_file}
ssl_key = <{key_file}
# The plain-IMAP test logs in without TLS, which Dovecot refuses by default.
disable_plaintext_auth = no
# Answer a wrong password at once instead of after 2 s.
auth_failure_delay = 0
auth_verbose = yes

passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
mail_location = maildir:~/Maildir

service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
{unconfined}"""
    )
    return ImapServer("127.0.0.1", port, tls_port, user, password, ca_file, log_file)


def _certificates(root: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate it signed for localhost and 127.0.0.1;
    returns the CA's certificate, the server's certificate and the server's key."""
    (root / "server.ext").write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )

    def run(command: str, *more: str) -> None:
        arguments = ["openssl", *command.split(), *more]
        subprocess.run(arguments, cwd=root, check=True, capture_output=True)

    new_key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    ca_usage = "keyUsage = critical, keyCertSign, cRLSign"
    run(
        f"req -x509 {new_key} -keyout ca.key -out ca.pem -days 2 -addext",
        ca_usage,
        "-subj",
        "/CN=Hearth test CA",
    )
    run(f"req {new_key} -keyout server.key -out server.csr -subj /CN=localhost")
    run(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile server.ext -out server.pem"
    )
    return root / "ca.pem", root / "server.pem", root / "server.key"


@contextmanager
def _running(root: Path, server: ImapServer) -> Iterator[None]:
    """Dovecot in the foreground (``-F``) as a child process, until the block ends."""
    output = (root / "dovecot.out").open("wb")
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_ready(process, root, server)
        yield
    finally:
        process.terminate()  # the master stops its children before it exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()


def _wait_until_ready(process: subprocess.Popen[bytes], root: Path, server: ImapServer) -> None:
    """Until both ports greet with ``* OK``. An open port is not enough: a login process
    stopped before it has finished starting holds up Dovecot's shutdown by 5 s."""
    deadline = time.monotonic() + START_SECONDS
    context = ssl.create_default_context(cafile=server.ca_file)
    waiting = [server.port, server.tls_port]
    while waiting:
        if process.poll() is not None:
            raise AssertionError(f"Dovecot exited with {process.returncode}:\n{_logs(root)}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"Dovecot did not answer within {START_SECONDS:g} s:\n{_logs(root)}"
            )
        try:
            with socket.create_connection((server.host, waiting[0]), timeout=2) as connection:
                if waiting[0] == server.tls_port:
                    with context.wrap_socket(connection, server_hostname=server.host) as tls:
                        greeting = tls.recv(64)
                else:
                    greeting = connection.recv(64)
        except OSError:
            greeting = b""
        if greeting.startswith(b"* OK"):
            waiting.pop(0)
        else:
            time.sleep(0.05)


def _logs(root: Path) -> str:
    texts = []
    for name in ("dovecot.out", "dovecot.log"):
        path = root / name
        if path.exists():
            texts.append(path.read_text(errors="replace"))
    return "\n".join(texts).strip() or "(no output)"
