"""How a worker is named in its heartbeats, and when it counts as gone: shared by the worker,
the ``worker`` health check and ``hearth check --worker``, which imports nothing heavy."""

from __future__ import annotations

import socket

# A worker is alive if it reported within this many heartbeat intervals.
MISSED_BEATS = 3


def node_name() -> str:
    """The name of this host's worker, as its heartbeat records it."""
    return f"hearth@{socket.gethostname()}"
