"""Real receivers for Apprise on loopback: an HTTP server taking Apprise's ``json://``
posts, an SMTP server (aiosmtpd) taking ``mailto://`` mail, a port that accepts and never
answers, and a component whose health check a test turns on and off (a TCP listener)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from hearth.kit.checks import CheckResult
from tests.support.services import free_port, serving


class JsonReceiver(ThreadingHTTPServer):
    """Records each JSON body POSTed to it (Apprise's ``json://`` plugin); answers 200, or
    503 while ``failing``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _JsonHandler)
        self.posts: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.failing = False
        self.refused = 0

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def titles(self) -> list[str]:
        return [str(post["title"]) for post in self.posts]


class _JsonHandler(BaseHTTPRequestHandler):
    server: JsonReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.failing:
            self.server.refused += 1
            self._answer(503)
            return
        self.server.posts.append(json.loads(body))
        self.server.paths.append(self.path)
        self._answer(200)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@contextmanager
def json_receiver() -> Iterator[JsonReceiver]:
    with serving(JsonReceiver()) as server:
        yield server


@dataclass
class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on loopback, keeping every message it accepts."""

    port: int
    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    def url(self) -> str:
        """A ``mailto://`` URL for it: plain SMTP, no login (Apprise's insecure mode)."""
        return (
            f"mailto://127.0.0.1:{self.port}?from=hearth@example.com&to=ops@example.com"
            "&mode=insecure"
        )

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        content = envelope.original_content or b""
        self.messages.append(message_from_bytes(content))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(free_port())
    controller = Controller(receiver, hostname="127.0.0.1", port=receiver.port)
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()


def text_of(message: Message) -> str:
    """The plain-text part of a message."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text/plain part")


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a receiver that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()
    server.settimeout(0.05)

    def accept() -> None:
        while not stop.is_set():
            with suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()


class Component:
    """Something a health check connects to: a TCP listener the test opens and closes."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: socket.socket | None = None

    def up(self) -> None:
        if self._server is None:
            server = socket.socket()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", self.port))
            server.listen(64)
            self._server = server

    def down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def check(self) -> CheckResult:
        """``ok`` when something listens on the port, else ``unreachable`` and why."""
        started = time.perf_counter()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError as exc:
            return CheckResult.timed("unreachable", f"127.0.0.1:{self.port}: {exc}", started)
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()
        return CheckResult.timed("ok", f"127.0.0.1:{self.port} answers", started)


async def eventually(condition: Callable[[], Awaitable[bool]], *, within: float = 15.0) -> None:
    """Await ``condition()`` until it is true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.1)
