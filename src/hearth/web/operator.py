"""Who is the operator: the signed session cookie says so after a login. The access decision
routes declare (``OperatorDep``); the login itself is ``hearth.auth``'s."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Depends, Request

from hearth.errors import HearthError

SESSION_KEY = "operator"


class NotLoggedIn(HearthError):
    """No operator session. Browsers are sent to the login page; API clients get 401."""

    status_code = 401

    def __init__(self, next_path: str) -> None:
        super().__init__("Log in as the operator first: POST /login with the operator password.")
        self.login_url = f"/login?next={quote(next_path)}"


async def is_operator(request: Request) -> bool:
    """Whether this request comes from the operator's logged-in session."""
    return request.session.get(SESSION_KEY) is True


def start_operator_session(request: Request) -> None:
    """A fresh session for the operator: nothing carried over from before the login, so an
    earlier session cannot be fixed on them."""
    request.session.clear()
    request.session[SESSION_KEY] = True


async def require_operator(request: Request) -> None:
    """Let the request through only from the operator's session; else ``NotLoggedIn``."""
    if not await is_operator(request):
        raise NotLoggedIn(request.url.path)


# For a route's ``dependencies=[...]``: the operator only.
OperatorDep = Depends(require_operator)
