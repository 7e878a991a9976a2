"""The official MCP Python client, connected to a running `hearth serve`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from tests.support.process import HearthServer

TOKEN = "mcp-test-token-0123456789abcdef"


@asynccontextmanager
async def mcp_client(
    server: HearthServer, token: str = TOKEN, statuses: list[int] | None = None
) -> AsyncIterator[Client]:
    """The official client, connected to ``server``'s /mcp with ``token``; the HTTP status
    of each response it gets is appended to ``statuses``."""

    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        event_hooks={"response": [record]},
    )
    async with http, Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as c:
        yield c


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    return " ".join(getattr(block, "text", "") for block in result.content)
