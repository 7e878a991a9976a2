"""Small servers on loopback standing in for what cannot run here: an LLM server speaking the
real HTTP APIs of Ollama, OpenAI and Azure OpenAI, and a host that accepts connections and
never answers."""

from __future__ import annotations

import hashlib
import json
import math
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.services import serving

# What the fake Ollama has; other names answer 404.
PULLED_MODELS = ["llama3.2:1b", "nomic-embed-text", "mxbai-embed-large"]
EMBEDDING_DIMENSION = 64
# A second embedding model to switch to (re-embedding): vectors of another size, whose
# words land elsewhere, so they are not comparable with the first model's.
SECOND_EMBEDDING_MODEL = "mxbai-embed-large"
SECOND_EMBEDDING_DIMENSION = 48


def fake_embedding(text: str, model: str = "nomic-embed-text") -> list[float]:
    """The vector the fake server gives ``text``: a bag of words, each word hashed to one
    dimension (feature hashing), normalised. Equal texts get equal vectors, and texts that
    share words are near each other, so a search has a nearest neighbour to find.
    ``SECOND_EMBEDDING_MODEL`` hashes each word with its name, into fewer dimensions."""
    second = model == SECOND_EMBEDDING_MODEL
    size = SECOND_EMBEDDING_DIMENSION if second else EMBEDDING_DIMENSION
    salt = model.encode() if second else b""
    vector = [0.0] * size
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.sha256(salt + word.encode()).digest()
        vector[digest[0] % size] += 1.0 if digest[1] % 2 else -1.0
    norm = sum(value * value for value in vector) ** 0.5 or 1.0
    return [value / norm for value in vector]


@dataclass
class Received:
    """One request as the fake server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class FakeLLM(ThreadingHTTPServer):
    """An LLM server double that speaks three APIs on one port.

    - Ollama: ``GET /api/tags``, ``POST /api/chat``, ``POST /api/embed``;
    - OpenAI: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/embeddings``,
      requiring ``Authorization: Bearer <api_key>`` when ``api_key`` is set;
    - Azure OpenAI: ``GET /openai/models``, ``POST /openai/deployments/<name>/chat/completions``
      and ``…/embeddings``, each requiring ``?api-version=`` and an ``api-key: <api_key>``
      header.

    Chat answers echo the last user message; embeddings are ``fake_embedding``. ``mode``
    decides how every endpoint answers: ok, error (HTTP 500), garbage (not JSON), slow
    (answers after ``delay`` seconds), shape (JSON without the expected fields), short
    (one embedding fewer than texts), infinite (an embedding holding ``1e999``, which a JSON
    parser reads as infinity) or huge (one holding ``1e300``: finite, beyond a 32-bit float).
    ``received`` records every request.
    """

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        """On ``port`` (a free one by default: a test may bring a server back where it was)."""
        super().__init__(("127.0.0.1", port), _Handler)
        self.mode = "ok"
        self.delay = 0.0
        self.requests = 0
        self.api_key: str | None = None
        self.received: list[Received] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) closed its end before the slow answer.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


FakeOllama = FakeLLM  # its name from when it spoke only Ollama's API

Reply = tuple[int, Any]

# The number the first embedding holds in the modes that answer one a vector cannot hold.
_ODD_NUMBERS = {"infinite": b"1e999", "huge": b"1e300"}


def _texts(body: dict[str, Any]) -> list[str]:
    given = body.get("input", [])
    return [given] if isinstance(given, str) else list(given)


def _last_user_message(body: dict[str, Any]) -> str:
    users = [m["content"] for m in body.get("messages", []) if m.get("role") == "user"]
    return users[-1] if users else ""


def _embeddings(server: FakeLLM, body: dict[str, Any]) -> list[list[float]]:
    model = str(body.get("model") or "nomic-embed-text")
    vectors = [fake_embedding(text, model) for text in _texts(body)]
    if server.mode in _ODD_NUMBERS:
        vectors[0][0] = math.inf  # written as the mode's number by _send
    return vectors[:-1] if server.mode == "short" else vectors


def _ollama_tags(server: FakeLLM, body: Any) -> Reply:
    return 200, {"models": [{"name": "llama3.2:1b", "size": 1321098329}]}


def _ollama_model_missing(body: dict[str, Any]) -> Reply | None:
    model = body.get("model")
    if not model:
        return 400, {"error": "model is required"}
    if model not in PULLED_MODELS:
        return 404, {"error": f'model "{model}" not found, try pulling it first'}
    return None


def _ollama_chat(server: FakeLLM, body: dict[str, Any]) -> Reply:
    if missing := _ollama_model_missing(body):
        return missing
    message = {"role": "assistant", "content": _last_user_message(body)}
    if body.get("stream", True) is not False:  # Ollama streams unless told not to
        chunks = [{"message": message, "done": False}, {"message": {}, "done": True}]
        return 200, "\n".join(json.dumps(chunk) for chunk in chunks).encode()
    return 200, {"model": body["model"], "message": message, "done": True}


def _ollama_embed(server: FakeLLM, body: dict[str, Any]) -> Reply:
    if missing := _ollama_model_missing(body):
        return missing
    return 200, {"model": body["model"], "embeddings": _embeddings(server, body)}


def _openai_models(server: FakeLLM, body: Any) -> Reply:
    return 200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}


def _openai_chat(server: FakeLLM, body: dict[str, Any]) -> Reply:
    message = {"role": "assistant", "content": _last_user_message(body)}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return 200, {"object": "chat.completion", "model": "gpt-4o-mini", "choices": [choice]}


def _openai_embeddings(server: FakeLLM, body: dict[str, Any]) -> Reply:
    data = [
        {"object": "embedding", "index": index, "embedding": vector}
        for index, vector in enumerate(_embeddings(server, body))
    ]
    data.reverse()  # the API promises an index on each item, not an order
    return 200, {"object": "list", "data": data, "model": "text-embedding-3-small"}


def _needs_model(answer: Callable[[FakeLLM, Any], Reply]) -> Callable[[FakeLLM, Any], Reply]:
    """OpenAI's endpoints refuse a request that names no model (Azure's take the deployment)."""

    def checked(server: FakeLLM, body: Any) -> Reply:
        if not body.get("model"):
            return 400, {"error": {"message": "you must provide a model parameter"}}
        return answer(server, body)

    return checked


_DEPLOYMENT = r"/openai/deployments/[^/]+"

# (method, path pattern) -> (which API's authentication, the answer)
_ROUTES: dict[tuple[str, str], tuple[str, Callable[[FakeLLM, Any], Reply]]] = {
    ("GET", "/api/tags"): ("ollama", _ollama_tags),
    ("POST", "/api/chat"): ("ollama", _ollama_chat),
    ("POST", "/api/embed"): ("ollama", _ollama_embed),
    ("GET", "/v1/models"): ("openai", _openai_models),
    ("POST", "/v1/chat/completions"): ("openai", _needs_model(_openai_chat)),
    ("POST", "/v1/embeddings"): ("openai", _needs_model(_openai_embeddings)),
    ("GET", "/openai/models"): ("azure", _openai_models),
    ("POST", f"{_DEPLOYMENT}/chat/completions"): ("azure", _openai_chat),
    ("POST", f"{_DEPLOYMENT}/embeddings"): ("azure", _openai_embeddings),
}


class _Handler(BaseHTTPRequestHandler):
    server: FakeLLM

    def do_GET(self) -> None:
        self._handle(None)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, {"error": "the body is not JSON"})
            return
        self._handle(body)

    def _handle(self, body: Any) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        self.server.requests += 1
        self.server.received.append(
            Received(self.command, url.path, query, dict(self.headers), body)
        )
        route = next(
            (
                target
                for (method, pattern), target in _ROUTES.items()
                if method == self.command and re.fullmatch(pattern, url.path)
            ),
            None,
        )
        if route is None:
            self._send(404, {"error": "not found"})
            return
        api, answer = route
        refusal = self._refusal(api, query)
        mode = self.server.mode
        if refusal:
            self._send(*refusal)
        elif mode == "error":
            self._send(500, {"error": "model runner crashed"})
        elif mode == "garbage":
            self._send(200, b"<html>this is not ollama</html>")
        elif mode == "shape":
            self._send(200, {"object": "nothing you expected"})
        else:
            if mode == "slow":
                time.sleep(self.server.delay)
            self._send(*answer(self.server, body))

    def _refusal(self, api: str, query: dict[str, str]) -> Reply | None:
        """What the real server answers a request lacking its credentials or version."""
        key = self.server.api_key
        if api == "openai" and key and self.headers.get("Authorization") != f"Bearer {key}":
            # OpenAI quotes the key it refused: the adapter must not pass that on.
            sent = self.headers.get("Authorization", "")
            message = f"Incorrect API key provided: {sent.removeprefix('Bearer ')}"
            return 401, {"error": {"message": message, "code": "invalid_api_key"}}
        if api == "azure":
            if "api-version" not in query:
                message = "The api-version query parameter (?api-version=) is required."
                return 404, {"error": {"code": "MissingApiVersionParameter", "message": message}}
            if not key or self.headers.get("api-key") != key:
                message = "Access denied due to invalid subscription key or wrong API endpoint."
                return 401, {"error": {"code": "401", "message": message}}
        return None

    def _send(self, status: int, body: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        if (number := _ODD_NUMBERS.get(self.server.mode)) is not None:
            # What a server that prints floats itself may write; json.dumps writes Infinity.
            data = data.replace(b"Infinity", number)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        # Silences the default stderr log.
        pass


@contextmanager
def fake_llm(port: int = 0) -> Iterator[FakeLLM]:
    """A fake LLM server on ``port`` (any free one by default: pass one to bring the same
    endpoint back after it went away)."""
    with serving(FakeLLM(port)) as server:
        yield server


fake_ollama = fake_llm  # its name from when it spoke only Ollama's API


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
