"""Who is the operator: the session cookie names a session, and the app's session store
(``hearth.auth.sessions``, handed over as ``app.state.operator_sessions``) says whether it is
still open. The access decision routes declare (``OperatorDep``); the login itself is
``hearth.auth``'s."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote

from fastapi import Depends, Request

from hearth.errors import HearthError

SESSION_KEY = "operator"
_ANSWER = "operator_session_open"  # on request.state: asked once per request


class OperatorSessions(Protocol):
    """Where operator sessions live, so that they can end (logout, a new password, expiry)."""

    async def start(self) -> str:
        """Open a session; its id, for the cookie."""
        ...

    async def is_active(self, session_id: str) -> bool:
        """Whether the session is open. Never raises."""
        ...

    async def end(self, session_id: str) -> None:
        """End the session. Never raises."""
        ...


class NotLoggedIn(HearthError):
    """No operator session. Browsers are sent to the login page; API clients get 401."""

    status_code = 401

    def __init__(self, next_path: str) -> None:
        super().__init__("Log in as the operator first: POST /login with the operator password.")
        self.login_url = f"/login?next={quote(next_path)}"


def _store(request: Request) -> OperatorSessions | None:
    store: OperatorSessions | None = getattr(request.app.state, "operator_sessions", None)
    return store  # None before the lifespan ran


async def is_operator(request: Request) -> bool:
    """Whether this request comes from an open operator session."""
    known: bool | None = getattr(request.state, _ANSWER, None)
    if known is None:
        session_id = request.session.get(SESSION_KEY)
        store = _store(request)
        known = False
        if isinstance(session_id, str) and store is not None:
            known = await store.is_active(session_id)
        setattr(request.state, _ANSWER, known)
    return known


async def start_operator_session(request: Request) -> None:
    """A fresh session for the operator: nothing carried over from before the login, so an
    earlier session cannot be fixed on them."""
    store = _store(request)
    if store is None:
        raise HearthError("Hearth is still starting; log in again in a moment.", status_code=503)
    session_id = await store.start()
    request.session.clear()
    request.session[SESSION_KEY] = session_id
    setattr(request.state, _ANSWER, True)


async def end_operator_session(request: Request) -> bool:
    """End this request's operator session, in the store and in the cookie; whether it was
    open."""
    was_open = await is_operator(request)
    session_id = request.session.get(SESSION_KEY)
    store = _store(request)
    if isinstance(session_id, str) and store is not None:
        await store.end(session_id)
    request.session.clear()
    setattr(request.state, _ANSWER, False)
    return was_open


async def require_operator(request: Request) -> None:
    """Let the request through only from the operator's session; else ``NotLoggedIn``."""
    if not await is_operator(request):
        raise NotLoggedIn(request.url.path)


# For a route's ``dependencies=[...]``: the operator only.
OperatorDep = Depends(require_operator)
