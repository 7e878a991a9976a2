"""The MCP endpoint at ``/mcp``: the MCP SDK's server over streamable HTTP, behind a bearer
token.

The web app imports ``endpoint`` only; the SDK itself (``server``) is imported when
``MCP_TOKEN`` is set, so a Hearth without MCP does not pay for its imports.
"""
