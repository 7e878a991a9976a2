"""A server uses the runtime values it read lately for RUNTIME_VALUES_CACHE_SECONDS: a save
on its config page is in force at once on that process, a save on another replica (or by
`hearth settings import`) once the values kept are older than the setting, and the config
page always shows the database's. Real apps on the suite's PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.app.factory import create_app
from hearth.config.recent import RecentValues
from hearth.config.service import ConfigService
from hearth.config.settings import Settings
from hearth.models import Setting
from tests.support.app import served, served_to_operator
from tests.support.process import TEST_SECRET_KEY
from tests.support.services import free_port
from tests.support.tokens import bearer, insert_token

PASSWORD = "operator-password-for-recent-values"


async def llm_status(client: httpx.AsyncClient) -> str:
    """The LLM check's status: ``unconfigured`` without an endpoint, ``unreachable`` with
    one where nothing listens."""
    status: str = (await client.get("/health")).json()["checks"]["llm"]["status"]
    return status


@pytest.mark.usefixtures("clean_settings")
async def test_a_save_is_in_force_at_once_here_and_elsewhere_after_the_values_kept_expire(
    make_settings: Callable[..., Settings],
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with (
        served_to_operator(
            make_settings(admin_password=PASSWORD, runtime_values_cache_seconds=60)
        ) as here,
        served(create_app(make_settings(runtime_values_cache_seconds=60))) as replica,
        served(create_app(make_settings(runtime_values_cache_seconds=0))) as uncached,
    ):
        assert await llm_status(here) == "unconfigured"
        assert await llm_status(replica) == "unconfigured"  # read now, kept for 60 s

        saved = await here.post("/config", json={"llm_endpoint": nowhere})
        assert saved.status_code == 200, saved.text

        assert await llm_status(here) == "unreachable"  # the saving process: at once
        assert await llm_status(uncached) == "unreachable"
        # Another replica acts on what it read until its values are 60 s old...
        assert await llm_status(replica) == "unconfigured"
        # ...while the config page always shows the database's.
        page = (await here.get("/config")).json()["settings"]["llm_endpoint"]
        assert (page["value"], page["source"]) == (nowhere, "database")


@pytest.mark.usefixtures("clean_settings")
async def test_requests_act_on_the_values_kept(
    make_settings: Callable[..., Settings], engine: AsyncEngine, database_url: str
) -> None:
    """A route's runtime values (here the Documents overview's embedding model) come from
    what the process read lately; with the cache off, from the database each time."""
    reader = bearer(insert_token(database_url, ("read",)))
    async with (
        served(create_app(make_settings(runtime_values_cache_seconds=60))) as cached,
        served(create_app(make_settings(runtime_values_cache_seconds=0))) as uncached,
    ):
        before = (await cached.get("/documents", headers=reader)).json()["model"]
        async with engine.begin() as connection:  # as another replica's save would
            await connection.execute(
                sa.insert(Setting).values(key="embedding_model", value="bge-m3")
            )
        assert (await cached.get("/documents", headers=reader)).json()["model"] == before
        assert (await uncached.get("/documents", headers=reader)).json()["model"] == "bge-m3"
    assert before != "bge-m3"


@pytest.mark.usefixtures("clean_settings")
async def test_a_reembedding_acts_on_the_stored_model_not_the_one_kept(
    make_settings: Callable[..., Settings], engine: AsyncEngine, database_url: str
) -> None:
    """A script runs `hearth settings import`, then asks for a re-embedding at once: the
    route reads the model from the database, whatever the process kept."""
    client = bearer(insert_token(database_url, ("read", "write")))
    async with served(create_app(make_settings(runtime_values_cache_seconds=60))) as cached:
        kept = (await cached.get("/documents/progress", headers=client)).json()["model"]
        async with engine.begin() as connection:  # as `hearth settings import` would
            await connection.execute(
                sa.insert(Setting).values(key="embedding_model", value="bge-m3")
            )
        queued = await cached.post("/documents/reembed", headers=client)
    assert queued.status_code == 202, queued.text
    assert queued.json()["model"] == "bge-m3"
    assert kept != "bge-m3"


def test_values_kept_expire_and_a_save_drops_them_and_the_reads_under_way() -> None:
    values = ConfigService(
        Settings(_env_file=None, secret_key=TEST_SECRET_KEY)
    ).values_without_database()

    kept = RecentValues(seconds=60)
    kept.put(values, kept.generation)
    assert kept.get() == values

    read_began = kept.generation
    kept.forget()  # a save committed while a read was under way
    assert kept.get() is None
    kept.put(values, read_began)  # what that read found is the values as they were
    assert kept.get() is None

    brief = RecentValues(seconds=0.05)
    brief.put(values, brief.generation)
    time.sleep(0.06)
    assert brief.get() is None

    off = RecentValues(seconds=0)
    off.put(values, off.generation)
    assert off.get() is None
