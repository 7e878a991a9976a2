"""``/docs``: the API's page, Swagger UI served by Hearth itself, so it works with no
internet and runs no one else's script.

Swagger UI's files come from the ``fastapi-swagger`` package, pinned in ``uv.lock``: they
are swagger-ui-dist's files, byte for byte (docs/development.md says how to check). The page
starts Swagger UI with ``static/docs.js`` instead of an inline script, so it keeps the strict
Content-Security-Policy of every other page.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse
from starlette.responses import Response

from hearth.web import csrf
from hearth.web.templating import TEMPLATES

ASSETS_PATH = "/static/swagger-ui"
# What the page loads; nothing else of the package (its __init__.py, bytecode) is served.
ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})


def assets_directory() -> Path:
    """Where the installed ``fastapi-swagger`` keeps Swagger UI's files."""
    return Path(str(files("fastapi_swagger") / "resources"))


def install_docs(app: FastAPI, *, path: str = "/docs") -> None:
    """Serve the API's page at ``path`` and Swagger UI's files under ``/static/swagger-ui``.
    Call it before mounting ``/static``, which would answer for those files otherwise."""
    directory = assets_directory()
    title = f"{app.title} API"

    async def swagger_ui_file(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404, f"No Swagger UI file named {name!r}")
        return FileResponse(directory / name)

    async def docs_page(request: Request) -> Response:
        # The CSRF token lets "Try it out" write from the operator's session.
        context = {
            "title": title,
            "openapi_url": app.openapi_url,
            "csrf_token": csrf.token_for(request.session),
        }
        return TEMPLATES.TemplateResponse(request, "docs.html", context)

    app.add_api_route(
        f"{ASSETS_PATH}/{{name}}", swagger_ui_file, methods=["GET", "HEAD"], include_in_schema=False
    )
    app.add_api_route(path, docs_page, methods=["GET"], include_in_schema=False)
