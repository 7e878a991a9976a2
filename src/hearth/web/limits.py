"""Request bodies are limited while they are read: no single request can make the process
hold more than its route's limit in memory.

A body whose ``Content-Length`` is over the limit is refused with 413 before a byte of it is
read; a body sent without one (chunked) is counted as it arrives and refused as soon as it
passes the limit. Pure ASGI, so nothing is buffered on the way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hearth.web.errors import error_response

MiB = 1024 * 1024


class Limit(NamedTuple):
    """How many bytes a body may have, and the setting an operator changes it with."""

    size: int
    setting: str

    def refusal(self) -> str:
        """What a client whose body is larger is told."""
        size = f"{self.size / MiB:g} MiB" if self.size >= MiB else f"{self.size} bytes"
        return (
            f"The request body is larger than {size}, the most this route takes "
            f"(the operator sets it with {self.setting})."
        )


class BodyTooLarge(HTTPException):
    """413: the body is larger than the route takes. An ``HTTPException``, so that FastAPI's
    body parsing passes it on instead of turning it into a 400."""

    def __init__(self, limit: Limit) -> None:
        super().__init__(413, limit.refusal())


class BodyLimit:
    """Holds every request body to ``default``, and the paths in ``larger`` to theirs."""

    def __init__(self, app: ASGIApp, *, default: Limit, larger: Mapping[str, Limit]) -> None:
        self.app = app
        self.default = default
        self.larger = dict(larger)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with its body counted, or answer 413 at once."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit.size:
            await error_response(413, limit.refusal())(scope, receive, send)
            return

        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.size:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:  # raised where nothing turned it into an answer
            if started:
                raise
            await error_response(413, limit.refusal())(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
