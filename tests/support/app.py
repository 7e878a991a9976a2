"""The real app, served in-process through its lifespan, on the suite's database and Redis.
conftest.py registers these fixtures as a plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from tests.support.process import TEST_SECRET_KEY
from tests.support.services import REDIS_URL

ClientFor = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    """Settings for the suite's database and Redis; keyword arguments override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "secret_key": TEST_SECRET_KEY,
            "database_url": database_url,
            "redis_url": REDIS_URL,
            "db_connect_attempts": 1,
            "db_connect_delay_seconds": 0.1,
            "health_cache_seconds": 0,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and an async client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://hearth.test") as client:
            yield client


@asynccontextmanager
async def served_to_operator(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app for ``settings`` (which set ADMIN_PASSWORD), and a client logged in as the
    operator, sending its session's CSRF token."""
    assert settings.admin_password is not None, "the operator needs ADMIN_PASSWORD"
    password = settings.admin_password.get_secret_value()
    async with served(create_app(settings)) as client:
        token = (await client.get("/login")).json()["csrf_token"]
        login = await client.post(
            "/login", json={"password": password}, headers={"X-CSRF-Token": token}
        )
        assert login.status_code == 200, login.text
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        yield client


@pytest.fixture
def client_for(make_settings: Callable[..., Settings]) -> ClientFor:
    """The real app on the suite's database, opened with keyword overrides of its settings."""

    def open_client(**overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return served(create_app(make_settings(**overrides)))

    return open_client
