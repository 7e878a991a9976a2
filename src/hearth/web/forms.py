"""Reading what a client submitted: an HTML form or a JSON object, the same to a handler."""

from __future__ import annotations

from starlette.requests import Request

from hearth.errors import HearthError

MAX_FIELDS = 64


async def submitted_values(request: Request, *, required: bool = False) -> dict[str, str]:
    """The submitted fields as text; 400, 415 or 422 with the reason for anything else.
    Without a body that is ``required``, 422 as FastAPI answers for a missing body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not await request.body():
        if required:
            raise HearthError(
                "This request needs a body: a form or a JSON object.",
                status_code=422,
                field_errors={"body": "Field required"},
            )
        if not content_type:
            return {}  # a bare POST (htmx buttons, logout with the token in a header)
    if content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise HearthError("The body is not valid JSON.", status_code=400) from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise HearthError(
                'Expected a JSON object of text values, e.g. {"llm_model": "llama3.2"}.',
                status_code=422,
            )
        return {str(k): v for k, v in data.items()}
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_fields=MAX_FIELDS, max_files=0)
        return {key: value for key, value in form.items() if isinstance(value, str)}
    raise HearthError(
        "Send a form (application/x-www-form-urlencoded) or a JSON object (application/json).",
        status_code=415,
    )
