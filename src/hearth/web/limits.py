"""Request bodies are limited while they are read: no single request can make the process
hold more than its route's limit in memory.

A body whose ``Content-Length`` is over the limit is refused with 413 before a byte of it is
read; a body sent without one (chunked) is counted as it arrives and refused as soon as it
passes the limit. Pure ASGI, so nothing is buffered on the way.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hearth.web.errors import error_response


class BodyTooLarge(HTTPException):
    """413: the body is larger than the route takes. An ``HTTPException``, so that FastAPI's
    body parsing passes it on instead of turning it into a 400."""

    def __init__(self, limit: int, variable: str) -> None:
        super().__init__(
            413,
            f"The request body is larger than {_size(limit)}, the most this route takes "
            f"(the operator sets it with {variable}).",
        )


class BodyLimit:
    """Holds every request body to ``default`` bytes, and the paths in ``larger`` to theirs."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int,
        larger: Mapping[str, int],
        variables: Mapping[str, str],
    ) -> None:
        """``variables`` names, by path (``""`` for the default), the setting behind each
        limit, for the message that tells a client what to ask its operator for."""
        self.app = app
        self.default = default
        self.larger = dict(larger)
        self.variables = dict(variables)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with its body counted, or answer 413 at once."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = self.larger.get(path, self.default)
        variable = self.variables.get(path, self.variables.get("", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            refused = BodyTooLarge(limit, variable)
            await error_response(413, str(refused.detail))(scope, receive, send)
            return

        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, variable)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:  # raised where nothing turned it into an answer
            if started:
                raise
            await error_response(413, str(exc.detail))(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _size(limit: int) -> str:
    return f"{limit / 1024 / 1024:g} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"
