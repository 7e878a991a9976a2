"""An embedding server that answers at once, speaking Ollama's HTTP API (``GET /api/tags``,
``POST /api/embed``), so the documents benchmark measures Hearth's pipeline, not a model.

Vectors come from the corpus (``bench.documents_corpus.embed``), looked up by text when the
corpus computed them beforehand, else computed. The server counts how often it was asked
to embed each text: a document embedded twice shows as a count above one.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench import documents_corpus


class EmbeddingDouble(ThreadingHTTPServer):
    """Ollama's embedding API on loopback, answering from ``vectors`` (text -> vector)."""

    daemon_threads = True

    def __init__(self, vectors: dict[str, str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.vectors = vectors
        self.lock = threading.Lock()
        self.asked: Counter[str] = Counter()  # texts embedded, each with how often
        self.requests = 0
        self.queries = 0  # texts not in ``vectors`` (searches), computed on request

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def reset(self) -> None:
        """Forget what was asked so far (between two runs of the pipeline)."""
        with self.lock:
            self.asked.clear()
            self.requests = 0
            self.queries = 0

    def answer(self, texts: list[str]) -> bytes:
        """The ``/api/embed`` body for ``texts``, recording each."""
        parts = []
        computed = 0
        for text in texts:
            vector = self.vectors.get(text)
            if vector is None:
                vector = documents_corpus.embed(text)
                computed += 1
            parts.append(vector)
        with self.lock:
            self.asked.update(texts)
            self.requests += 1
            self.queries += computed
        model = json.dumps(documents_corpus.MODEL)
        return f'{{"model":{model},"embeddings":[{",".join(parts)}]}}'.encode()

    def embedded_twice(self, texts: list[str]) -> int:
        """How many of ``texts`` were asked for more than once."""
        with self.lock:
            return sum(1 for text in texts if self.asked[text] > 1)

    def never_asked(self, texts: list[str]) -> int:
        """How many of ``texts`` were never asked for."""
        with self.lock:
            return sum(1 for text in texts if self.asked[text] == 0)


class _Handler(BaseHTTPRequestHandler):
    server: EmbeddingDouble
    protocol_version = "HTTP/1.1"  # keep-alive, as Ollama's server
    # The headers and the body leave in two writes: without this, Nagle's algorithm holds
    # the body back until the client's delayed ACK (40 ms on Linux).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401 (the base class's signature)
        """Quiet: thousands of requests."""

    def do_GET(self) -> None:
        if self.path == "/api/tags":
            model = {"name": documents_corpus.MODEL, "size": 274302450}
            self._send(200, json.dumps({"models": [model]}).encode())
        else:
            self._send(404, b'{"error":"not found"}')

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/api/embed":
            self._send(404, b'{"error":"not found"}')
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, b'{"error":"the body is not JSON"}')
            return
        given = body.get("input", [])
        texts = [given] if isinstance(given, str) else list(given)
        self._send(200, self.server.answer(texts))

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
