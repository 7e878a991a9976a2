"""The MCP endpoint at ``/mcp``: FastMCP over streamable HTTP, behind a bearer token.

The web app imports ``endpoint`` only; FastMCP itself (``server``) is imported when
``MCP_TOKEN`` is set, so a Hearth without MCP does not pay for its imports.
"""
