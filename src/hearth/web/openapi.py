"""What the OpenAPI schema says about errors: Hearth's one error body, and every status an
operation answers, so a client generated from ``/openapi.json`` (or a fuzzer checking the
answers against it) is told the truth.

Routes declare the statuses only they answer with ``responses=error_responses(...)``;
``install_openapi`` adds what every operation of a kind answers (400, 413 and 422 where there
is a body, 422 where there are parameters) and puts Hearth's body in place of FastAPI's
``HTTPValidationError``, which Hearth never sends.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from hearth.web.errors import ErrorBody

Responses = dict[int | str, dict[str, Any]]

ERROR_SCHEMA = ErrorBody.__name__
_ERROR_REF = f"#/components/schemas/{ERROR_SCHEMA}"
_FASTAPI_SCHEMAS = ("HTTPValidationError", "ValidationError")

DESCRIPTIONS = {
    400: "The body cannot be read: not valid JSON, or not UTF-8.",
    401: "No credential, or a wrong one.",
    403: "Not allowed: a missing or wrong CSRF token, or a credential that does not cover this.",
    404: "Nothing there.",
    409: "It exists already (a name that must be unique).",
    413: "The body is larger than this route takes (the operator sets the limit).",
    415: "The body is neither a form (application/x-www-form-urlencoded) nor JSON.",
    422: "Invalid input: `errors` names each refused field and why.",
    429: "Too many attempts: try again after `Retry-After` seconds.",
    503: "A service this route needs is down or missing; `detail` says which, `Retry-After`"
    " when to ask again.",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before asking again.",
        "schema": {"type": "integer"},
    }
}


def error_responses(*statuses: int) -> Responses:
    """For a route's ``responses=``: each of ``statuses``, answered with Hearth's error body."""
    return {
        code: {"model": ErrorBody, "description": DESCRIPTIONS[code]}
        | ({"headers": _RETRY_AFTER} if code == HTTPStatus.SERVICE_UNAVAILABLE else {})
        for code in statuses
    }


def form_or_json(
    properties: dict[str, str], *, required: bool, example: dict[str, str] | None = None
) -> dict[str, Any]:
    """For a route's ``openapi_extra=``: the body ``hearth.web.forms.submitted_values`` reads,
    a form or a JSON object of text values; ``properties`` names the known fields (name ->
    description), others may come along."""
    fields = {name: {"type": "string", "description": text} for name, text in properties.items()}
    schema = {"type": "object", "properties": fields, "additionalProperties": {"type": "string"}}
    json_media: dict[str, Any] = {"schema": schema}
    if example is not None:
        json_media["example"] = example
    content = {
        "application/json": json_media,
        "application/x-www-form-urlencoded": {"schema": schema},
    }
    return {"requestBody": {"required": required, "content": content}}


def install_openapi(app: FastAPI) -> None:
    """Have ``app.openapi()`` (and so ``/openapi.json`` and ``/docs``) describe Hearth's
    errors; the schema is built once, on first use, as FastAPI's is."""
    generate = app.openapi  # FastAPI's own, which keeps what it built in app.openapi_schema

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way


def describe_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with Hearth's error body for every error and the statuses that every
    operation with a body or parameters answers."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas[ERROR_SCHEMA] = error_schema
    for name in _FASTAPI_SCHEMAS:
        schemas.pop(name, None)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            _describe_operation(operation)
    return schema


def _describe_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    shared: list[int] = []
    if "requestBody" in operation:
        shared += [400, 413, 422]
    if operation.get("parameters"):
        shared.append(422)
    for code in shared:
        responses.setdefault(str(code), _error(code))
    for key, response in responses.items():
        if _refers_to_fastapi_error(response):
            response.clear()
            response.update(_error(int(key)))


def _error(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS.get(status, "An error."),
        "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}},
    }


def _refers_to_fastapi_error(response: dict[str, Any]) -> bool:
    refs = {
        media.get("schema", {}).get("$ref", "")
        for media in response.get("content", {}).values()
        if isinstance(media, dict)
    }
    return any(ref.rsplit("/", 1)[-1] in _FASTAPI_SCHEMAS for ref in refs)
