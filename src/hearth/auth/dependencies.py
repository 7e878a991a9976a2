"""FastAPI dependencies of the operator login."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hearth.auth.service import OperatorAuth


async def get_auth(request: Request) -> OperatorAuth:
    """The operator login the app was started with."""
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
    auth: OperatorAuth = request.app.state.auth
    return auth


AuthDep = Annotated[OperatorAuth, Depends(get_auth)]
