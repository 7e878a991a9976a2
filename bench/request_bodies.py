"""The memory of ``hearth serve`` while huge request bodies arrive, against its idle memory.

Eight clients at once each send a 256 MB body to ``POST /documents`` declaring its length,
then eight more send one in chunks (no length, so only counting while reading can stop it).
The serve process's RSS is sampled every 20 ms throughout; the figure is its peak minus its
idle RSS measured just before. Target: at most +25 MB (the bodies are refused with 413, not
held). Traffic goes to 127.0.0.1 only, and each client stops when the server closes on it.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from dataclasses import dataclass
from functools import partial

import psutil
from tests.support.process import HEARTH, clean_environment
from tests.support.services import free_port

from bench import common
from bench.common import LOOPBACK, Processes

CLIENTS = 8
BODY_BYTES = 256 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
SAMPLE_INTERVAL_S = 0.02
START_TIMEOUT_S = 60.0
TARGET_GROWTH_MB = 25.0
MB = 1024 * 1024


@dataclass
class BodiesResult:
    idle_rss: int
    peak_rss: int
    refused: int  # answers that were a 413
    clients: int

    @property
    def growth_mb(self) -> float:
        return (self.peak_rss - self.idle_rss) / MB


def _send(port: int, *, chunked: bool) -> bool:
    """Send one huge body; whether the answer was a 413."""
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % BODY_BYTES
    head = b"POST /documents HTTP/1.1\r\nHost: hearth\r\nContent-Type: application/json\r\n"
    chunk = b" " * CHUNK_BYTES
    piece = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
    with socket.create_connection((LOOPBACK, port), timeout=30) as connection:
        connection.sendall(head + framing + b"\r\n\r\n")
        try:
            for _ in range(BODY_BYTES // CHUNK_BYTES):
                connection.sendall(piece)
        except OSError:
            pass  # the server answered and closed: what a limit does
        try:
            return connection.recv(64).startswith(b"HTTP/1.1 413")
        except OSError:
            return False


def measure_bodies(processes: Processes, database_url: str) -> BodiesResult:
    """Start ``hearth serve``, read its idle RSS, send the bodies, record the peak RSS."""
    port = free_port()
    env = clean_environment(HOST=LOOPBACK, DATABASE_URL=database_url, LOG_LEVEL="WARNING")
    print("request bodies: starting hearth serve ...", file=sys.stderr)
    started = time.perf_counter()
    process = processes.start([HEARTH, "serve", "--port", str(port)], env, name="bodies")
    log = partial(processes.log_tail, process)
    common.wait_for_200(process, port, "/readyz", started, START_TIMEOUT_S, log)
    server = psutil.Process(process.pid)
    time.sleep(1.0)  # settle after the first requests
    idle = peak = server.memory_info().rss
    sending = True

    def sample() -> None:
        nonlocal peak
        while sending:
            peak = max(peak, server.memory_info().rss)
            time.sleep(SAMPLE_INTERVAL_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    answers: list[bool] = []
    for chunked in (False, True):
        print(f"request bodies: {CLIENTS} clients, chunked={chunked} ...", file=sys.stderr)
        clients = [
            threading.Thread(target=lambda c=chunked: answers.append(_send(port, chunked=c)))
            for _ in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
    sending = False
    sampler.join()
    processes.stop(process)
    return BodiesResult(idle, peak, sum(answers), len(answers))


def rows(result: BodiesResult) -> list[tuple[str, ...]]:
    """The report's row: peak RSS growth while the bodies arrive, beside the idle RSS."""
    return [
        (
            f"serve RSS while {result.clients} bodies of 256 MB arrive",
            f"+{result.growth_mb:.1f} MB",
            f"{result.idle_rss / MB:.1f} MB idle",
            f"{result.peak_rss / result.idle_rss:.2f}x",
            f"<= +{TARGET_GROWTH_MB:g} MB",
            common.met(result.growth_mb <= TARGET_GROWTH_MB),
        )
    ]


def details(result: BodiesResult) -> list[str]:
    """The report's detail line: how the bodies were sent and answered."""
    line = (
        f"  request bodies: {CLIENTS} with Content-Length, then {CLIENTS} chunked, at once, to "
        f"POST /documents; {result.refused} of {result.clients} answered 413; RSS sampled "
        f"every {SAMPLE_INTERVAL_S * 1000:g} ms"
    )
    return [line]
