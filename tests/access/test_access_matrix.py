"""The access matrix: every route the app serves has a declared decision (public, the
operator's session, or an API token scope), and the app keeps it.

A route added without a line in ``ACCESS`` fails the first test, so no data surface can
appear open by accident; the second test asks each guarded route as each kind of caller and
sees the decision hold on a real app and database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from tests.support.app import ClientFor
from tests.support.tokens import bearer, insert_token

PASSWORD = "operator-password-for-the-access-matrix"
PUBLIC, OPERATOR = "public", "operator"

# (method, path) -> who may call it: PUBLIC, OPERATOR, or the API token scope it needs
# (the operator's session holds every scope).
ACCESS: dict[tuple[str, str], str] = {
    # Probes and the pages anyone sees: statuses only (details need `read`, see HEALTH_DETAILS).
    ("GET", "/health"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/livez"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/status"): PUBLIC,
    ("GET", "/health/fragment"): PUBLIC,
    ("GET", "/health/history"): PUBLIC,  # statuses and times; details need `read`
    ("GET", "/status/history"): PUBLIC,  # the same, as the /status section
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    # The API's description and the files the pages load: no data.
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("*", "/static"): PUBLIC,
    ("GET", "/static/swagger-ui/{name}"): PUBLIC,
    # The operator console.
    ("GET", "/config"): OPERATOR,
    ("POST", "/config"): OPERATOR,
    ("POST", "/config/test/{service}"): OPERATOR,
    ("POST", "/config/notifications/test"): OPERATOR,
    ("GET", "/activity"): OPERATOR,
    ("GET", "/tokens"): OPERATOR,
    ("POST", "/tokens"): OPERATOR,
    ("POST", "/tokens/revoke"): OPERATOR,
    # The data plane.
    ("GET", "/documents"): "read",  # the Documents page to browsers, its JSON to programs
    ("GET", "/documents/progress"): "read",
    ("GET", "/documents/{document_id}"): "read",
    ("GET", "/documents/search"): "read",
    ("GET", "/tasks/{task_id}"): "read",
    # The operator's page; `read` as health details (`hearth diagnose` reads the log ring).
    ("GET", "/diagnostics"): "read",
    ("GET", "/tasks"): "read",  # the Tasks page for the operator, JSON for a `read` token
    ("POST", "/documents"): "write",
    ("POST", "/documents/batch"): "write",
    ("POST", "/documents/reembed"): "write",
    ("DELETE", "/documents/{document_id}"): "write",
    ("POST", "/documents/{document_id}/delete"): "write",  # the page's form
    ("POST", "/tasks/ping"): "write",
    ("POST", "/tasks/{task_id}/retry"): "write",
    # Prometheus: a `metrics` token (docs/metrics.md).
    ("GET", "/metrics"): "metrics",
    # MCP: a `write` token or MCP_TOKEN, checked by its own guard (hearth.mcp.auth).
    ("GET", "/mcp"): "write",
    ("POST", "/mcp"): "write",
    ("DELETE", "/mcp"): "write",
}

# What a request needs to reach the access decision: path parameters and a body.
EXAMPLE_PATHS = {
    "{document_id}": "1",
    "{task_id}": "8f7d2c1e-0b6a-4b7e-9d55-3c2a1f0e9b11",
    "{service}": "db",
}


def _served_routes(routes: list[Any]) -> Iterator[Any]:
    """Every route of the app, including those of the routers it includes."""
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        if included is not None:
            yield from _served_routes(included.routes)
        else:
            yield route


def _guards(dependant: Dependant) -> set[str]:
    """The access dependencies a route runs (``require_operator``, ``require_read``…)."""
    found = set()
    for dependency in dependant.dependencies:
        name = getattr(dependency.call, "__name__", "")
        if name.startswith("require_"):
            found.add(name.removeprefix("require_"))
        found |= _guards(dependency)
    return found


def _decisions(app: FastAPI) -> dict[tuple[str, str], str | None]:
    """(method, path) -> the decision the code makes: read from the route's dependencies
    for API routes; None for the routes that guard themselves (static files, MCP)."""
    found: dict[tuple[str, str], str | None] = {}
    for route in _served_routes(app.routes):
        methods = sorted(set(getattr(route, "methods", None) or {"*"}) - {"HEAD"})
        if isinstance(route, APIRoute):
            guards = _guards(route.dependant)
            assert len(guards) <= 1, f"{route.path} has more than one access guard: {guards}"
            decision = guards.pop() if guards else PUBLIC
        else:
            decision = None
        for method in methods:
            found[(method, route.path)] = decision
    return found


def test_every_route_has_a_declared_decision_and_the_code_makes_it(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(mcp_token="matrix-mcp-token")
    decisions = _decisions(create_app(settings))
    undeclared = sorted(set(decisions) - set(ACCESS))
    assert not undeclared, f"routes without an access decision in ACCESS: {undeclared}"
    gone = sorted(set(ACCESS) - set(decisions))
    assert not gone, f"ACCESS names routes the app no longer serves: {gone}"
    differing = {
        route: (ACCESS[route], made)
        for route, made in decisions.items()
        if made is not None and made != ACCESS[route]
    }
    assert not differing, f"declared vs made by the code: {differing}"


def _example(path: str) -> str:
    for placeholder, value in EXAMPLE_PATHS.items():
        path = path.replace(placeholder, value)
    return path


async def _status(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> int:
    body: dict[str, Any] | None = {} if method == "POST" else None
    response = await client.request(method, _example(path), json=body, headers=headers)
    return response.status_code


async def test_each_guarded_route_refuses_whom_it_should(
    client_for: ClientFor, database_url: str
) -> None:
    """Anonymous: 401 everywhere guarded. A token without the scope: 403 (a token is never
    the operator: 401 on the console). The right token, or the operator: let through; the
    operator's writes only with the session's CSRF token (403 without)."""
    tokens = {scope: insert_token(database_url, (scope,)) for scope in ("read", "write", "metrics")}
    everything = insert_token(database_url, ("read", "write", "metrics"))
    guarded = {route: decision for route, decision in ACCESS.items() if decision != PUBLIC}
    answers: dict[tuple[str, str], dict[str, int]] = {}
    async with client_for(admin_password=PASSWORD) as client:
        csrf = {"X-CSRF-Token": (await client.get("/login")).json()["csrf_token"]}
        for (method, path), decision in guarded.items():
            seen = answers.setdefault((method, path), {})
            seen["anonymous"] = await _status(client, method, path, csrf)
            if decision == OPERATOR:
                seen["token"] = await _status(client, method, path, csrf | bearer(everything))
            else:
                other = "write" if decision == "read" else "read"
                seen["other scope"] = await _status(
                    client, method, path, csrf | bearer(tokens[other])
                )
                seen["its scope"] = await _status(
                    client, method, path, csrf | bearer(tokens[decision])
                )
        login = await client.post("/login", json={"password": PASSWORD}, headers=csrf)
        operator = {"X-CSRF-Token": login.json()["csrf_token"]}
        for method, path in guarded:
            if path != "/mcp":  # MCP takes tokens only, never a browser session
                seen = answers[(method, path)]
                seen["operator"] = await _status(client, method, path, operator)
        # The session cookie alone never writes: every write asks for the CSRF token too.
        for method, path in guarded:
            if method != "GET" and path != "/mcp":
                answers[(method, path)]["operator, no CSRF token"] = await _status(
                    client, method, path, {}
                )

    wrong = _unexpected(answers)
    assert not wrong, wrong


def _unexpected(answers: dict[tuple[str, str], dict[str, int]]) -> dict[tuple[str, ...], str]:
    """Each answer that is not what its caller should get: a refusal where the route lets
    that caller through, or anything but the refusal where it does not."""
    wrong: dict[tuple[str, ...], str] = {}
    for route, seen in answers.items():
        expected_refusals = {
            "anonymous": 401,
            "token": 401,
            "other scope": 403,
            "operator, no CSRF token": 403,
        }
        for caller, status in seen.items():
            refused = expected_refusals.get(caller)
            if refused is not None and status != refused:
                wrong[(*route, caller)] = f"{status}, not {refused}"
            if refused is None and status in (401, 403):
                wrong[(*route, caller)] = f"{status}, refused"
    return wrong
