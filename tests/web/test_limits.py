"""No single request can hurt the process: bodies are limited while they are read."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.app import ClientFor
from tests.support.process import clean_environment, hearth_server
from tests.support.services import free_port
from tests.support.tokens import bearer

JSON = {"content-type": "application/json"}


async def _chunks(size: int, chunk: int = 512) -> AsyncIterator[bytes]:
    """A body sent without Content-Length (chunked), so only counting can catch it."""
    for _ in range(size // chunk):
        yield b" " * chunk


@pytest.mark.parametrize("sent", ["with content-length", "chunked"])
async def test_a_body_over_the_limit_is_a_413_naming_the_setting(
    client_for: ClientFor, sent: str
) -> None:
    async with client_for(max_request_bytes=4096) as client:
        body = _chunks(8192) if sent == "chunked" else b" " * 8192
        response = await client.post("/login", content=body, headers=JSON)
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "too_large"
    assert "larger than 4096 bytes" in response.json()["detail"]
    assert "MAX_REQUEST_BYTES" in response.json()["detail"]


async def test_the_batch_route_takes_more_than_the_others(
    client_for: ClientFor, api_token: str
) -> None:
    documents = b'{"documents": [' + b",".join([b'{"text": "' + b"w" * 900 + b'"}'] * 8) + b"]}"
    assert 4096 < len(documents) < 16384
    async with client_for(max_request_bytes=4096, max_batch_request_bytes=16384) as client:
        client.headers.update(bearer(api_token))
        batch = await client.post("/documents/batch", content=documents, headers=JSON)
        single = await client.post("/documents", content=documents, headers=JSON)
        over = await client.post("/documents/batch", content=_chunks(20000), headers=JSON)
    assert batch.status_code == 202, batch.text
    assert single.status_code == 413
    assert over.status_code == 413
    assert "MAX_BATCH_REQUEST_BYTES" in over.json()["detail"]


async def test_bodies_within_the_limit_are_untouched(client_for: ClientFor, api_token: str) -> None:
    async with client_for(max_request_bytes=4096) as client:
        client.headers.update(bearer(api_token))
        response = await client.post("/documents", json={"text": "x" * 3000})
    assert response.status_code == 202, response.text


@pytest.mark.postgres
def test_a_huge_body_is_refused_before_it_is_sent(tmp_path: Path, database_url: str) -> None:
    """A real server answers 413 to the headers of a 256 MB body at once: it reads none of
    it (the client has sent none), so it holds none of it in memory."""
    env = clean_environment(DATABASE_URL=database_url)
    port = free_port()
    with hearth_server(env, tmp_path, port) as server:
        server.wait_until("/readyz")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(
                b"POST /documents HTTP/1.1\r\nHost: hearth\r\nContent-Type: application/json\r\n"
                b"Content-Length: 268435456\r\n\r\n"
            )
            # The socket's timeout fails the test if the server waits for the body instead.
            answer = http.client.HTTPResponse(connection)
            answer.begin()
            body = json.loads(answer.read())
    assert answer.status == 413, body
    assert body["error"] == "too_large"
