"""The MCP server: Hearth's tools, each a thin call into a service.

Add a tool inside ``build_mcp_server``: an async function decorated with ``@server.tool()``,
typed arguments and a typed (pydantic) return value, its docstring the description MCP
clients show; wrap the work in ``tool_errors(name)`` so expected failures reach the client
as tool errors with their message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from hearth.config.schemas import RuntimeSettings
from hearth.db.unit import unit_of_work
from hearth.documents import service as documents_service
from hearth.documents.schemas import MAX_RESULTS, DocumentIn, DocumentsAccepted, SearchResults
from hearth.errors import HearthError
from hearth.health.schemas import HealthReport
from hearth.llm.provider import LLMChoice
from hearth.log import get_logger
from hearth.mcp.resources import ToolResources
from hearth.version import hearth_version
from hearth.worker import service as worker_service
from hearth.worker.schemas import TaskState

log = get_logger(__name__)

READ_ONLY = ToolAnnotations(read_only_hint=True)
INSTRUCTIONS = (
    "Hearth is a self-hosted service core. Use `health` to see whether its database, Redis, "
    "worker, LLM and mail are reachable, `list_settings` for the runtime settings in force, "
    "`run_ping` to prove the background task queue works end to end, `add_document` to store "
    "text for search and `search_documents` to find stored text by meaning."
)


def build_mcp_server(resources: Callable[[], ToolResources]) -> MCPServer:
    """The MCP server with Hearth's tools, each a thin call into a service."""
    _route_library_logs()
    # An unexpected error's text stays in the (redacted) log: the SDK answers it with the
    # tool's name only. A ToolError's message (tool_errors, below) reaches the client.
    server = MCPServer("Hearth", instructions=INSTRUCTIONS, version=hearth_version())

    @server.tool(annotations=READ_ONLY)
    async def health() -> HealthReport:
        """Hearth's health, as GET /health reports it: the overall status (ok, degraded,
        down) and each component's (db, redis, worker, llm, mail) status and detail (null when
        the operator turned details off with HEALTH_DETAILS=never)."""
        used = resources()
        return await used.health.report(details=used.health_details)

    @server.tool(annotations=READ_ONLY)
    async def list_settings() -> RuntimeSettings:
        """The runtime settings in force, each with its value and its source (environment,
        database or default). Secrets are never among them."""
        used = resources()
        # Unlike the config page, no fallback to environment and defaults: a client could
        # not tell them from the values in force.
        with tool_errors("list_settings"):
            async with unit_of_work(used.sessions) as unit:
                return RuntimeSettings.of(await used.config.values_in_force(unit.session))

    @server.tool()
    async def run_ping(
        wait_seconds: Annotated[
            float, Field(ge=0, le=30, description="How long to wait for the result")
        ] = 3.0,
    ) -> TaskState:
        """Send the ping task through the task queue and wait up to wait_seconds for a
        worker's answer. Returns the task id; state SUCCESS with result.pong true proves
        the queue and a worker work, PENDING means no worker took it yet."""
        with tool_errors("run_ping"):
            return await worker_service.ping(resources().queue, wait_seconds)

    @server.tool()
    async def add_document(document: DocumentIn) -> DocumentsAccepted:
        """Store a document (text, and optional metadata as a JSON object); a worker embeds
        it, after which search_documents finds it."""
        used = resources()
        with tool_errors("add_document"):
            async with unit_of_work(used.sessions) as unit:
                return await documents_service.accept(unit, used.queue, [document])

    @server.tool(annotations=READ_ONLY)
    async def search_documents(
        query: Annotated[str, Field(min_length=1, max_length=2000, description="What to find")],
        k: Annotated[int, Field(ge=1, le=MAX_RESULTS, description="How many results")] = 5,
    ) -> SearchResults:
        """The k stored documents nearest in meaning to query, best first, each with its
        cosine similarity score (1 is identical)."""
        used = resources()
        with tool_errors("search_documents"):
            values = await used.config.read_values(used.sessions)
            llm = used.llm.adapter(LLMChoice.of(values))
            model = values["embedding_model"].value
            async with unit_of_work(used.sessions) as unit:
                return await documents_service.search(
                    unit.session, used.vector, llm, model, query, k
                )

    return server


@contextmanager
def tool_errors(tool: str) -> Iterator[None]:
    """Turn Hearth's expected errors (database or queue unavailable…) into MCP tool errors
    that carry their message: the client sees why, the server does not crash."""
    try:
        yield
    except HearthError as exc:
        log.warning("mcp_tool_failed", tool=tool, reason=exc.message)
        # Logged above through Hearth's pipeline; the SDK's own line about it is at INFO,
        # below the level _route_library_logs leaves its loggers.
        raise ToolError(exc.message) from None


def _route_library_logs() -> None:
    """Send the MCP SDK's logs through Hearth's JSON pipeline."""
    # Hearth's lines are JSON: no handler of the SDK's own (it adds one to the root logger
    # only when that has none, which Hearth's never lacks).
    logger = logging.getLogger("mcp")
    logger.handlers.clear()
    logger.propagate = True
    # Its INFO lines describe every session and request: noise for an operator.
    logger.setLevel(max(logging.WARNING, logging.getLogger().level))
