"""Counts and times every HTTP request by its route template: one pure ASGI middleware.

The route is read from the scope after the app has answered: the router puts the route it
chose there (``scope["route"]``), whose ``path`` is the template (``/documents/{document_id}``),
never the path asked for, so no id, query or other input of the client becomes a label. A
mount (``/static``) is known by the ``root_path`` it adds to the scope. A request no route
took is ``(unmatched)``; a method outside the fixed set is ``OTHER``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from prometheus_client.metrics import Counter, Histogram

    from hearth.metrics.registry import AppMetrics

UNMATCHED = "(unmatched)"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Records ``hearth_http_requests_total`` and ``hearth_http_request_duration_seconds``
    for each HTTP request, including those answered by an error handler."""

    def __init__(self, app: ASGIApp, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # The labelled children, looked up once: ``labels()`` takes a lock and builds
        # tuples, a cost every request would pay again.
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._histograms: dict[tuple[str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; count it once it is answered (or failed)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        root_path = scope.get("root_path", "")

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self._record(scope, root_path, status, time.perf_counter() - started)

    def _record(self, scope: Scope, root_path: str, status: int, seconds: float) -> None:
        template: str | None = getattr(scope.get("route"), "path", None)
        if template is None:
            mounted = scope.get("root_path", "")
            template = mounted[len(root_path) :] if mounted != root_path else UNMATCHED
        method: str = scope["method"]
        if method not in METHODS:
            method = "OTHER"
        key = (method, template, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self.metrics.requests.labels(method, template, str(status))
            self._counters[key] = counter
        counter.inc()
        timed = (method, template)
        histogram = self._histograms.get(timed)
        if histogram is None:
            histogram = self.metrics.request_duration.labels(method, template)
            self._histograms[timed] = histogram
        histogram.observe(seconds)
