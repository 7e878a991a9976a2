"""FastAPI dependencies of notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hearth.notify.sender import AppriseSender


async def get_sender(request: Request) -> AppriseSender | None:
    """The sender of NOTIFY_URLS's receivers; None when NOTIFY_URLS is unset."""
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
    sender: AppriseSender | None = getattr(request.app.state, "notify_sender", None)
    return sender


SenderDep = Annotated[AppriseSender | None, Depends(get_sender)]
