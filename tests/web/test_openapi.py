"""The OpenAPI schema tells the truth about errors: Hearth's body, and each status an
operation answers; a missing body where one is required is a 422 with that body."""

from __future__ import annotations

from typing import Any

import pytest

from hearth.web.openapi import ERROR_SCHEMA
from tests.support.app import ClientFor

PASSWORD = "openapi-operator-password"
ERROR_REF = f"#/components/schemas/{ERROR_SCHEMA}"


def _operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }


async def test_every_error_is_hearths_body(client_for: ClientFor) -> None:
    async with client_for() as client:
        schema = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in str(schema)
    assert set(schema["components"]["schemas"][ERROR_SCHEMA]["required"]) == {
        "error",
        "detail",
        "request_id",
    }
    for label, operation in _operations(schema).items():
        for status, response in operation["responses"].items():
            if int(status) >= 400 and label not in {"GET /healthz", "GET /livez", "GET /readyz"}:
                media = response["content"]["application/json"]
                assert media["schema"] == {"$ref": ERROR_REF}, (label, status)
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= operation["responses"].keys(), label
        if operation.get("parameters"):
            assert "422" in operation["responses"], label


@pytest.mark.parametrize(
    ("label", "statuses"),
    [
        ("GET /config", {"200", "401"}),
        ("POST /config", {"200", "401", "403", "415", "422", "503"}),
        ("POST /config/test/{service}", {"200", "401", "403", "404"}),
        ("POST /login", {"200", "401", "403", "429"}),
        ("POST /logout", {"200", "403"}),
        ("POST /documents", {"202", "401", "403", "503"}),
        ("GET /documents/{document_id}", {"200", "401", "403", "404", "503"}),
        ("GET /documents/search", {"200", "401", "403", "503"}),
        ("POST /tasks/ping", {"202", "401", "403", "503"}),
        ("GET /tasks/{task_id}", {"200", "401", "403", "503"}),
    ],
)
async def test_operations_list_what_they_answer(
    client_for: ClientFor, label: str, statuses: set[str]
) -> None:
    async with client_for() as client:
        schema = (await client.get("/openapi.json")).json()
    assert statuses <= _operations(schema)[label]["responses"].keys()


async def test_a_missing_body_is_a_422_with_hearths_body(client_for: ClientFor) -> None:
    async with client_for(admin_password=PASSWORD) as client:
        token = (await client.get("/login")).json()["csrf_token"]
        headers = {"X-CSRF-Token": token}
        login = await client.post("/login", json={"password": PASSWORD}, headers=headers)
        assert login.status_code == 200
        headers = {"X-CSRF-Token": login.json()["csrf_token"]}
        config = await client.post("/config", headers=headers)
        empty_json = await client.post(
            "/config", content=b"", headers={**headers, "Content-Type": "application/json"}
        )
        nothing_to_change = await client.post("/config", json={}, headers=headers)
    for response in (config, empty_json):
        assert response.status_code == 422
        body = response.json()
        assert body["error"] == "invalid_input"
        assert body["request_id"] == response.headers["x-request-id"]
        assert [error["field"] for error in body["errors"]] == ["body"]
    assert "needs a body" in config.json()["detail"]
    assert nothing_to_change.status_code == 200  # a body, if an empty one, is no error
