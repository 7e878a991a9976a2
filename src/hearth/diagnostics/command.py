"""``hearth diagnose``: the report gathered by the command itself (its own checks, as
``hearth check``), and the running server's log ring read through ``GET /diagnostics``
with ``HEARTH_TOKEN``; without a token, or without a server, the report says so and how to
get it. The command starts nothing: no embedded PostgreSQL, no worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from pydantic import ValidationError

from hearth.diagnostics.schemas import Diagnostics, LogSection
from hearth.diagnostics.service import DiagnosticsService, own_log
from hearth.kit.text import first_line

if TYPE_CHECKING:
    from hearth.config.settings import Settings

TOKEN_VARIABLE = "HEARTH_TOKEN"  # noqa: S105 (the variable's name, not a token)
SERVER_TIMEOUT_SECONDS = 10.0
_WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104 (a wildcard bind is reached via loopback)


def server_url(settings: Settings) -> str:
    """Where this host's ``hearth serve`` listens, by HOST and PORT."""
    host = "127.0.0.1" if settings.host in _WILDCARDS else settings.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


async def diagnose(service: DiagnosticsService, *, url: str, token: str | None) -> Diagnostics:
    """The report of this command's checks, with the server's log ring (or why not)."""
    server = await server_log(url, token)
    return await service.gather(
        generated_by="hearth diagnose", logs=[server, own_log("this hearth diagnose command")]
    )


async def server_log(url: str, token: str | None) -> LogSection:
    """The log ring of the server at ``url``, read with ``token``; a section saying why it
    was not read otherwise."""
    where = f"the server at {url}"
    if not token:
        return LogSection(
            process=where,
            read=False,
            note=f"The server's log ring was not read: set {TOKEN_VARIABLE} to an API token "
            "with the read scope (`hearth token create diagnose --scope read`) and run "
            f"`hearth diagnose` again, or open {url}/diagnostics in a browser as the "
            "operator and copy the report there.",
        )
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    try:
        async with httpx.AsyncClient(timeout=SERVER_TIMEOUT_SECONDS) as client:
            response = await client.get(f"{url}/diagnostics", headers=headers)
    except httpx.HTTPError as exc:
        return LogSection(
            process=where,
            read=False,
            note=f"The server's log ring was not read: no server answered at {url} "
            f"({first_line(exc) or type(exc).__name__}); it lives only while `hearth serve` "
            "runs (--url names another address).",
        )
    if response.status_code != httpx.codes.OK:
        return LogSection(
            process=where,
            read=False,
            note=f"The server's log ring was not read: {url}/diagnostics answered HTTP "
            f"{response.status_code} ({_detail(response)}).",
        )
    try:
        # Only the log section is read: the rest this command gathers itself, and another
        # version of Hearth may shape it differently.
        section = LogSection.model_validate(response.json()["logs"][0])
    except (ValueError, KeyError, IndexError, TypeError, ValidationError):
        return LogSection(
            process=where,
            read=False,
            note=f"The server's log ring was not read: {url}/diagnostics did not answer "
            "Hearth's diagnostics (another program on that port, or another version).",
        )
    return section.model_copy(update={"process": f"{where}: {section.process}"})


def _detail(response: httpx.Response) -> str:
    """The reason in Hearth's error body, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail) if detail else response.text[:200] or "no reason given"
