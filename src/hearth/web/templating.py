"""Server-rendered pages: Jinja2 templates, the context every page shares, and whether a
request wants HTML or JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from hearth.version import hearth_version
from hearth.web import csrf
from hearth.web.operator import is_operator

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

# What every page shows beyond the basics (the LLM banner), given by the app that wires the
# concerns together: this low room imports none of them.
PageContext = Callable[[Request], Awaitable[dict[str, Any]]]

# The components' names for people, the same on every page; ids, JSON, metrics and logs keep
# the short ones (``db``, ``llm``…).
COMPONENT_LABELS = {
    "db": "Database",
    "redis": "Redis",
    "llm": "LLM",
    "worker": "Worker",
    "mail": "Mail",
}


def component_label(name: str) -> str:
    """A health component's name as the pages show it: ``db`` is "Database"."""
    return COMPONENT_LABELS.get(name, name.replace("_", " ").capitalize())


class _Templates:
    """The pages' templates, loaded when the first page is drawn: Jinja2 is a tenth of the
    server's start-up, and an API client, a probe or a scrape never needs it."""

    @cached_property
    def _templates(self) -> Jinja2Templates:
        from fastapi.templating import Jinja2Templates

        templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
        templates.env.filters["component_label"] = component_label
        return templates

    def TemplateResponse(  # noqa: N802 (Jinja2Templates' name)
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        status_code: int = 200,
    ) -> Response:
        """``Jinja2Templates.TemplateResponse``: ``name`` drawn with ``context``."""
        return self._templates.TemplateResponse(request, name, context, status_code=status_code)


TEMPLATES = _Templates()

NAV = (
    ("/", "Dashboard"),
    ("/status", "Health"),
    ("/tasks", "Tasks"),
    ("/config", "Config"),
    ("/documents", "Documents"),
    ("/tokens", "Tokens"),
    ("/activity", "Activity"),
    ("/diagnostics", "Diagnostics"),
)


def wants_html(request: Request) -> bool:
    """Browsers (and htmx) get pages; API clients, curl and probes get JSON."""
    if request.headers.get("hx-request"):
        return True
    accept = request.headers.get("accept", "")
    return "text/html" in accept


def set_page_context(app: FastAPI, context: PageContext) -> None:
    """Have ``render`` add ``context(request)`` to every page of ``app``."""
    app.state.page_context = context


def flash(request: Request, kind: str, message: str) -> None:
    """A message shown once, on the next page rendered for this session."""
    request.session.setdefault("flash", []).append({"kind": kind, "message": message})


_TITLES = {
    400: "Bad request",
    401: "Log in first",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    413: "Too large",
    415: "Unsupported content",
    422: "Invalid input",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Unavailable",
}


async def render_error(request: Request, status_code: int, detail: str) -> Response:
    """The error page (``404.html``, ``500.html``, else ``error.html``); for htmx, a small
    fragment that the page shows in place of the expected answer."""
    title = _TITLES.get(status_code, "Error")
    if request.headers.get("hx-request"):
        return TEMPLATES.TemplateResponse(
            request,
            "_test_result.html",
            {"result": {"status": "unreachable", "detail": f"{title}: {detail}"}},
            status_code=status_code,
        )
    template = f"{status_code}.html" if status_code in (404, 500) else "error.html"
    context = {"status_code": status_code, "title": title, "detail": detail}
    return await render(request, template, context, status_code=status_code)


async def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    """Render ``template`` with the shared context: navigation, the degraded banner, the
    CSRF token for htmx and forms, the operator's state and pending messages."""
    shared: dict[str, Any] = {
        "nav": NAV,
        "path": request.url.path,
        "version": hearth_version(),
        "operator": await is_operator(request),
        "csrf_token": csrf.token_for(request.session),
        "flashes": request.session.pop("flash", []),
        "llm": None,
    }
    extra: PageContext | None = getattr(request.app.state, "page_context", None)
    if extra is not None:
        shared.update(await extra(request))
    return TEMPLATES.TemplateResponse(
        request, template, {**shared, **(context or {})}, status_code=status_code
    )
