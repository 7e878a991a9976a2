"""Where the test suite finds PostgreSQL and Redis, and small servers of its own."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from socketserver import BaseServer
from typing import TypeVar
from urllib.parse import urlsplit

ServerT = TypeVar("ServerT", bound=BaseServer)

# An administrative connection: the suite creates (and drops) databases of its own.
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def unreachable(url: str, default_port: int) -> str | None:
    """Why nothing answers at ``url``'s host and port, or None when something does."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or default_port)
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError as exc:
        return f"nothing answers at {address[0]}:{address[1]} ({exc})"
    return None


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(server: ServerT) -> Iterator[ServerT]:
    """Run ``server`` (an http.server double) in a thread; shut it down on exit."""
    # A short poll interval: shutdown() waits for serve_forever's next poll.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Listener:
    """A port that counts the connections made to it (and closes each at once)."""

    port: int
    accepted: list[tuple[str, int]] = field(default_factory=list)


@contextmanager
def counting_listener() -> Iterator[Listener]:
    """A TCP port on 127.0.0.1 that accepts connections, counts them and closes them: a client
    fails fast, and the test learns whether anything tried to connect."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.05)
    listener = Listener(int(server.getsockname()[1]))
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, peer = server.accept()
            except OSError:
                continue
            listener.accepted.append(peer)
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        stop.set()
        thread.join()
        server.close()
