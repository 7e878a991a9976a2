"""FastAPI dependencies of the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hearth.audit.service import AuditTrail


async def get_audit(request: Request) -> AuditTrail:
    """The audit trail the app was started with."""
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
    audit: AuditTrail = request.app.state.audit
    return audit


AuditDep = Annotated[AuditTrail, Depends(get_audit)]
