"""Small servers on loopback standing in for what cannot run here: an Ollama server (it
speaks Ollama's real HTTP API) and a host that accepts connections and never answers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOllama(ThreadingHTTPServer):
    """``GET /api/tags`` answered according to ``mode``: ok, error (HTTP 500), garbage
    (not JSON), or slow (answers after ``delay`` seconds). It also speaks the OpenAI API's
    ``GET /v1/models``, requiring ``Authorization: Bearer <api_key>`` when one is set."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _OllamaHandler)
        self.mode = "ok"
        self.delay = 0.0
        self.requests = 0
        self.api_key: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _OllamaHandler(BaseHTTPRequestHandler):
    server: FakeOllama

    def do_GET(self) -> None:
        self.server.requests += 1
        if self.path == "/v1/models":
            self._openai_models()
        elif self.path != "/api/tags":
            self._send(404, b'{"error":"not found"}')
        elif self.server.mode == "error":
            self._send(500, b'{"error":"model runner crashed"}')
        elif self.server.mode == "garbage":
            self._send(200, b"<html>this is not ollama</html>")
        else:
            if self.server.mode == "slow":
                time.sleep(self.server.delay)
            body = {"models": [{"name": "llama3.2:1b", "size": 1321098329}]}
            self._send(200, json.dumps(body).encode())

    def _openai_models(self) -> None:
        expected = f"Bearer {self.server.api_key}" if self.server.api_key else None
        if expected and self.headers.get("Authorization") != expected:
            self._send(401, b'{"error":{"message":"Incorrect API key provided"}}')
            return
        self._send(200, json.dumps({"object": "list", "data": [{"id": "gpt-4o-mini"}]}).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # silence the default stderr log
        pass


@contextmanager
def fake_ollama() -> Iterator[FakeOllama]:
    server = FakeOllama()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def black_hole() -> Iterator[str]:
    """A TCP port that accepts connections and never sends a byte; yields ``host:port``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
                held.append(connection)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()
