"""How a worker is named in its heartbeats, and when it counts as gone: shared by the worker,
the ``worker`` health check and ``hearth check --worker``, which imports nothing heavy."""

from __future__ import annotations

import secrets
import socket

# A worker is alive if it reported within this many heartbeat intervals.
MISSED_BEATS = 3

# Each run of a worker has a name of its own, so a worker restarted on the same host (Docker
# keeps the container's hostname) or a second worker beside it is never taken for the one that
# died: the tasks the dead run held are recognised as orphaned by their worker's name.
_RUN = secrets.token_hex(3)


def node_name() -> str:
    """The name of this worker process, as its heartbeats and its tasks' results record it:
    ``hearth-<run>@<host>``."""
    return f"hearth-{_RUN}@{host_name()}"


def host_name() -> str:
    """The host part of the names of the workers running here."""
    return socket.gethostname()
