"""Who may change things: the operator, proven by a signed session cookie."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from hearth.auth.service import OperatorAuth
from hearth.errors import HearthError
from hearth.web.templating import is_operator


class NotLoggedIn(HearthError):
    """No operator session. Browsers are sent to the login page; API clients get 401."""

    status_code = 401

    def __init__(self, next_path: str) -> None:
        super().__init__("Log in as the operator first: POST /login with the operator password.")
        self.login_url = f"/login?next={quote(next_path)}"


async def require_operator(request: Request) -> None:
    if not is_operator(request):
        raise NotLoggedIn(request.url.path)


async def get_auth(request: Request) -> OperatorAuth:
    auth: OperatorAuth = request.app.state.auth
    return auth


AuthDep = Annotated[OperatorAuth, Depends(get_auth)]
