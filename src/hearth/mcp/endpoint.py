"""``/mcp`` in the web app: the MCP server behind the bearer token when ``MCP_TOKEN`` is set,
otherwise a 404 that says how to turn it on, and FastMCP never imported."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, NoReturn

from fastapi import FastAPI
from starlette.routing import Route

from hearth.config.settings import Settings
from hearth.errors import HearthError
from hearth.log import get_logger
from hearth.mcp.auth import BearerTokenGuard

if TYPE_CHECKING:
    from hearth.mcp.resources import ToolResources

log = get_logger(__name__)

PATH = "/mcp"
ENABLE_HINT = "set MCP_TOKEN to enable /mcp"


async def _disabled() -> NoReturn:
    raise HearthError(f"The MCP endpoint is off: {ENABLE_HINT}.", status_code=404)


def install(app: FastAPI, settings: Settings, resources: Callable[[], ToolResources]) -> None:
    """Route ``/mcp`` to the MCP server if ``MCP_TOKEN`` is set, else to a clear 404.
    ``resources`` gives the tools what they use, once the app's lifespan has opened it."""
    token = settings.mcp_token
    if token is None:
        app.state.mcp_app = None
        app.add_api_route(
            PATH,
            _disabled,
            methods=["GET", "POST", "DELETE"],
            include_in_schema=False,
            response_model=None,
        )
        return
    from hearth.mcp.server import build_mcp_server  # FastMCP: about 0.8 s of imports

    server = build_mcp_server(resources)
    # Stateless: any replica answers any request, so no sticky sessions behind a load
    # balancer; JSON answers rather than event streams, since no tool streams anything.
    # Both are given explicitly so FASTMCP_* variables cannot change them.
    mcp_app = server.http_app(path=PATH, stateless_http=True, json_response=True)
    # A route, not a mount: a mount would answer at /mcp/ and redirect /mcp to it.
    guarded = BearerTokenGuard(mcp_app, token.get_secret_value())
    app.router.routes.append(Route(PATH, guarded, include_in_schema=False))
    app.state.mcp_app = mcp_app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the MCP server's session manager while the app serves; log whether it is on."""
    mcp_app = app.state.mcp_app
    if mcp_app is None:
        log.info("mcp_disabled", hint=ENABLE_HINT)
        yield
        return
    async with mcp_app.lifespan(mcp_app):
        tools = await mcp_app.state.fastmcp_server.list_tools()
        log.info("mcp_enabled", path=PATH, tools=sorted(tool.name for tool in tools))
        yield
