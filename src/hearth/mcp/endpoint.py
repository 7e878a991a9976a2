"""``/mcp`` in the web app: the MCP server behind the bearer-token guard.

With ``MCP_TOKEN`` set, the server is built with the app and starts with it. Without it,
``/mcp`` still takes API tokens with the ``write`` scope, but the MCP SDK's server is
loaded only when the first such request arrives: a Hearth nobody reaches
through MCP does not pay for it.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from hearth.config.settings import Settings
from hearth.log import get_logger
from hearth.mcp.auth import BearerTokenGuard
from hearth.web.errors import error_response

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from starlette.applications import Starlette

    from hearth.mcp.resources import ToolResources

log = get_logger(__name__)

PATH = "/mcp"
ON_DEMAND_HINT = (
    "the MCP server starts on the first request with a write-scoped API token; "
    "set MCP_TOKEN to start it with the server"
)


def _build(resources: Callable[[], ToolResources]) -> tuple[MCPServer, Starlette]:
    """The MCP server and its ASGI app (a Starlette app whose lifespan runs the server)."""
    from mcp.server.transport_security import TransportSecuritySettings

    from hearth.mcp.server import build_mcp_server  # the MCP SDK: most of a second of imports

    server = build_mcp_server(resources)
    # Stateless: any replica answers any request, so no sticky sessions behind a load
    # balancer; JSON answers rather than event streams, since no tool streams anything.
    # No DNS-rebinding check of the SDK's: it would accept only a loopback Host header, and
    # Hearth is reached by other names. A page a browser was tricked into loading cannot pass
    # the guard: it needs the bearer token, which no browser adds by itself as it does a cookie.
    app = server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return server, app


class McpServer:
    """The MCP server's ASGI app, built now (``eager``) or on the first request let through,
    and run (its session manager) in a task of the app's lifespan."""

    def __init__(self, resources: Callable[[], ToolResources], *, eager: bool) -> None:
        self._resources = resources
        self.server: MCPServer | None = None
        self.app: Starlette | None = None
        if eager:
            self.server, self.app = _build(resources)
        self._open()

    def _open(self) -> None:
        self._wanted = asyncio.Event()
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._failure: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer through the MCP server, starting it first if nobody has yet."""
        if scope["method"] == "GET":
            # A GET asks for an event stream of messages the server sends by itself; stateless,
            # Hearth's never does (each answer comes with its POST), and the MCP specification
            # has such a server answer 405. The SDK would open a stream that never ends.
            refused = error_response(405, "The MCP endpoint takes POST: it sends no events.")
            refused.headers["Allow"] = "POST, DELETE"
            await refused(scope, receive, send)
            return
        if not self._ready.is_set():
            self._wanted.set()
            await self._ready.wait()
        if self.app is None or self._failure is not None:
            failure = self._failure or "not started"
            await error_response(503, f"The MCP server is not running: {failure}.")(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve in a task of its own while the block runs (the MCP session manager's task
        group must be entered and left in one task); an eager server is up on entry."""
        self._open()
        if self.app is None:
            log.info("mcp_on_demand", hint=ON_DEMAND_HINT)
        task = asyncio.create_task(self._run(), name="mcp-server")
        try:
            if self.app is not None:
                await self._ready.wait()
            yield
        finally:
            self._stopping.set()
            self._wanted.set()
            await task

    async def _run(self) -> None:
        try:
            if self.app is None:
                await self._wanted.wait()
                if self._stopping.is_set():
                    return
                # The imports in a thread: the rest of Hearth keeps answering meanwhile.
                await asyncio.to_thread(importlib.import_module, "hearth.mcp.server")
                self.server, self.app = _build(self._resources)
            assert self.server is not None
            async with self.app.router.lifespan_context(self.app):
                tools = await self.server.list_tools()
                log.info("mcp_enabled", path=PATH, tools=sorted(tool.name for tool in tools))
                self._ready.set()
                await self._stopping.wait()
        except Exception as exc:
            log.exception("mcp_start_failed")
            self._failure = type(exc).__name__
        finally:
            if not self._ready.is_set():
                self._failure = self._failure or "Hearth is stopping"
                self._ready.set()


def install(app: FastAPI, settings: Settings, resources: Callable[[], ToolResources]) -> None:
    """Route ``/mcp`` to the MCP server behind the token guard. ``resources`` gives the
    tools what they use, once the app's lifespan has opened it."""
    token = settings.mcp_token
    server = McpServer(resources, eager=token is not None)
    guarded = BearerTokenGuard(server, token.get_secret_value() if token else None)
    # A route, not a mount: a mount would answer at /mcp/ and redirect /mcp to it.
    app.router.routes.append(
        Route(PATH, guarded, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
    app.state.mcp_server = server


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the MCP server while the app serves (started now, or on demand)."""
    server: McpServer = app.state.mcp_server
    async with server.running():
        yield
