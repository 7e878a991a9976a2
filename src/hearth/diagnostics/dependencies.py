"""FastAPI dependencies of ``/diagnostics``: the service the app's lifespan built."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hearth.diagnostics.service import DiagnosticsService


async def get_diagnostics(request: Request) -> DiagnosticsService:
    """The diagnostics service the app's lifespan built."""
    service: DiagnosticsService = request.app.state.diagnostics
    return service


DiagnosticsDep = Annotated[DiagnosticsService, Depends(get_diagnostics)]
