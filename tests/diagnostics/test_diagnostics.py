"""``GET /diagnostics`` on the real app (its lifespan, the suite's PostgreSQL and Redis):
who may read it, what each section says, and that no seeded secret reaches the page or the
JSON, however it got into the process (settings, check details, log lines)."""

from __future__ import annotations

import html
import io
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import redis
from fastapi import FastAPI

from hearth.app.factory import create_app
from hearth.config.settings import Settings
from hearth.db.migrate import HEAD_REVISION
from hearth.log import configure_logging, get_logger
from hearth.log.setup import log_ring
from tests.support.app import served
from tests.support.tokens import bearer, insert_token

PASSWORD = "diag-operator-password-4417"
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}

# Known secrets, each in the place an operator would put it.
SECRETS = {
    "secret_key": "diag-secret-key-2c41f9a0b7e54d12aa90e3c6b5d8f107",
    "admin_password": PASSWORD,
    "mcp_token": "diag-mcp-token-5b1e9d2a",
    "llm_api_key": "sk-diag-llm-key-77aa01",
    "imap_password": "diag-imap-pass-606",
}
DATABASE_PASSWORD = "diag-db-pass-31"
REDIS_PASSWORD = "diag-redis-pass-88"
NOTIFY_TOKENS = ("DiagNotifyPath42", "diag-notify-tok-9137")
NOTIFY_URL = f"json://127.0.0.1:9/hook/{NOTIFY_TOKENS[0]}?token={NOTIFY_TOKENS[1]}"
EVERY_SECRET = [*SECRETS.values(), DATABASE_PASSWORD, REDIS_PASSWORD, *NOTIFY_TOKENS]


def _with_password(url: str, password: str) -> str:
    """``url`` with ``password`` as its user's password (the test servers trust anyone)."""
    scheme, rest = url.split("://", 1)
    userinfo, at, host = rest.rpartition("@")
    if not at:
        userinfo, host = "postgres", rest
    return f"{scheme}://{userinfo.split(':')[0]}:{password}@{host}"


async def _log_in(client: httpx.AsyncClient) -> None:
    csrf = (await client.get("/login")).json()["csrf_token"]
    login = await client.post("/login", json={"password": PASSWORD}, headers={"X-CSRF-Token": csrf})
    assert login.status_code == 200, login.text


@contextmanager
def _rows(database_url: str, worker: str) -> Iterator[None]:
    """A live worker's heartbeat and a runtime value saved on the config page, removed after."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO worker_heartbeats (hostname, pid, concurrency, started_at, seen_at) "
            "VALUES (%s, 4242, 3, now() - interval '1 hour', now())",
            (worker,),
        )
        connection.execute(
            "INSERT INTO settings (key, value) VALUES ('llm_model', 'diag-saved-model') "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
    try:
        yield
    finally:
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute("DELETE FROM worker_heartbeats WHERE hostname = %s", (worker,))
            connection.execute("DELETE FROM settings WHERE key = 'llm_model'")


async def test_who_may_read_it(
    make_settings: Callable[..., Settings], database_url: str, api_token: str
) -> None:
    """The operator or a read token; a browser without a session goes to the login page."""
    write_only = insert_token(database_url, ("write",))
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        assert (await client.get("/diagnostics", headers=JSON)).status_code == 401
        page = await client.get("/diagnostics", headers=HTML)
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/diagnostics"
        refused = await client.get("/diagnostics", headers=JSON | bearer(write_only))
        assert refused.status_code == 403
        assert "read" in refused.json()["detail"]
        assert (
            await client.get("/diagnostics", headers=JSON | bearer(api_token))
        ).status_code == 200
        await _log_in(client)
        page = await client.get("/diagnostics", headers=HTML)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"


async def test_every_section_says_what_it_found(
    make_settings: Callable[..., Settings], database_url: str, api_token: str, queue_redis: str
) -> None:
    worker = f"celery@diag-{uuid.uuid4().hex[:8]}"
    redis.Redis.from_url(queue_redis).rpush("embedding", "a", "b", "c")
    settings = make_settings(redis_url=queue_redis, log_level="INFO")
    with _rows(database_url, worker):
        async with served(create_app(settings)) as client:
            answer = await client.get("/diagnostics", headers=JSON | bearer(api_token))
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()

    assert report["health"]["checks"]["db"]["status"] == "ok"
    assert "PostgreSQL" in report["health"]["checks"]["db"]["detail"]  # details shown
    assert report["migrations"] == {
        "current": HEAD_REVISION,
        "head": HEAD_REVISION,
        "status": "current",
        "error": None,
    }
    assert report["queues"] == {
        "broker": "redis",
        "depths": {"celery": 0, "embedding": 3},
        "error": None,
    }
    [seen] = [w for w in report["workers"]["workers"] if w["name"] == worker]
    assert (seen["pid"], seen["concurrency"], seen["alive"]) == (4242, 3, True)

    infrastructure = {s["name"]: s for s in report["settings"]["infrastructure"]}
    assert infrastructure["secret_key"]["value"] == "set"
    assert infrastructure["admin_password"]["value"] == "unset"
    assert infrastructure["log_level"]["value"] == "INFO"
    assert infrastructure["log_level"]["source"] == "argument"
    assert infrastructure["port"]["source"] == "default"
    runtime = {s["name"]: s for s in report["settings"]["runtime"]}
    assert (runtime["llm_model"]["value"], runtime["llm_model"]["source"]) == (
        "diag-saved-model",
        "database",
    )
    assert runtime["event_date"]["source"] == "default"

    assert report["platform"]["python"].startswith("3.")
    [log] = report["logs"]
    assert log["read"] is True
    assert log["capacity"] == 200

    text = report["text"]
    for shown in (
        "== Health: ",
        "== Migrations",
        f"database at {HEAD_REVISION}, this Hearth's newest {HEAD_REVISION}: up to date",
        "embedding  3 waiting",
        worker,
        "diag-saved-model",
        "== Log: this server",
    ):
        assert shown in text, shown


def _seeded_settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(
        **SECRETS,
        database_url=_with_password(database_url, DATABASE_PASSWORD),
        redis_url=f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/13",
        llm_endpoint="http://127.0.0.1:9/v1",
        llm_provider="openai",
        notify_urls=NOTIFY_URL,
        notify_grace_seconds=0,
        imap_host="127.0.0.1",
        imap_port=9,
        imap_user="diag",
    )


def _log_every_secret(settings: Settings) -> None:
    """Lines that carry each secret, as Hearth's events and as a library's records."""
    log = get_logger("hearth.diagnostics.test")
    database_url = str(settings.database_url)
    for name, secret in (*SECRETS.items(), ("database_password", DATABASE_PASSWORD)):
        # An event name each: the repeat limiter lets 5 of one through a minute.
        log.warning(f"seeded_{name}", detail=f"the value is {secret} here")  # noqa: G004 (the name is the point)
    log.error("seeded_urls", database=database_url, redis=settings.redis_url, notify=NOTIFY_URL)
    logging.getLogger("some.library").warning("connecting to %s with %s", database_url, NOTIFY_URL)
    logging.getLogger("some.library").error("token %s refused", NOTIFY_TOKENS[1])


def _found(text: str) -> list[str]:
    return [secret for secret in EVERY_SECRET if secret in text or secret in html.unescape(text)]


async def test_no_seeded_secret_reaches_the_page_or_the_json(
    make_settings: Callable[..., Settings], database_url: str, api_token: str
) -> None:
    settings = _seeded_settings(make_settings, database_url)
    app: FastAPI = create_app(settings)
    # The pipeline as `hearth serve` configures it: these secrets masked in every line.
    written = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=written, secrets=settings.secret_values())
    log_ring().clear()
    try:
        async with served(app) as client:
            _log_every_secret(settings)
            answer = await client.get("/diagnostics", headers=JSON | bearer(api_token))
            await _log_in(client)
            page = await client.get("/diagnostics", headers=HTML)
    finally:
        configure_logging(level="WARNING", fmt="json")
        log_ring().clear()
    assert answer.status_code == 200, answer.text
    assert page.status_code == 200, page.text
    report = answer.json()

    # The lines did reach the report, masked.
    events = [event["event"] for event in report["logs"][0]["events"]]
    seeded = [f"seeded_{name}" for name in (*SECRETS, "database_password")]
    assert set(seeded) <= set(events)
    assert "seeded_urls" in events
    assert "connecting to %s with %s" not in events  # stdlib records are formatted first
    assert (
        f"postgresql+psycopg://postgres:***@127.0.0.1:5432/{database_url.rsplit('/', 1)[1]}"
        in report["text"]
    )
    infrastructure = {s["name"]: s["value"] for s in report["settings"]["infrastructure"]}
    for name in (*SECRETS, "notify_urls"):
        assert infrastructure[name] == "set", name
    assert infrastructure["redis_url"] == "redis://:***@127.0.0.1:6379/13"

    assert _found(answer.text) == []
    assert _found(page.text) == []
    # The page shows the same text (gathered again: the same settings, later log events).
    settings_part = report["text"].split("== Settings: infrastructure")[1].split("== Log")[0]
    assert settings_part in html.unescape(page.text)
