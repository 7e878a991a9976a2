"""The audit trail on real PostgreSQL: each security-relevant action leaves a row with actor,
client address and time; no secret ever reaches it; rows older than 90 days are pruned; the
Activity page is the operator's only; ``hearth audit`` prints the trail."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hearth.audit.service import AuditTrail, mask_urls
from tests.support.app import ClientFor
from tests.support.database import drop_database
from tests.support.process import clean_environment, run_hearth

PASSWORD = "correct horse battery staple"
API_KEY = "sk-audit-0123456789abcdefghij"  # passes as a model name: a paste mistake
QUERY_SECRET = "q-secret-9876543210"
CLIENT = "127.0.0.1"  # what httpx's ASGITransport reports as the client's address


def _rows(database_url: str, after: int = 0) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as connection:
        return connection.execute(
            "SELECT id, at, action, actor, client, details FROM audit_events"
            " WHERE id > %s ORDER BY id",
            (after,),
        ).fetchall()


def _mark(database_url: str) -> int:
    """The newest event's id now: the test's own events come after it."""
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SELECT coalesce(max(id), 0) FROM audit_events").fetchone()
    assert row is not None
    return int(row[0])


async def _csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": (await client.get("/login")).json()["csrf_token"]}


async def _login(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/login", json={"password": password}, headers=await _csrf(client))


async def _operator_headers(client: httpx.AsyncClient) -> dict[str, str]:
    response = await _login(client)
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


def _recent(at: datetime) -> bool:
    return abs(datetime.now(UTC) - at) < timedelta(minutes=1)


async def test_logins_logouts_and_refusals_leave_rows(
    client_for: ClientFor, database_url: str
) -> None:
    mark = _mark(database_url)
    async with client_for(admin_password=PASSWORD) as client:
        wrong = await _login(client, "guess-one")
        headers = await _operator_headers(client)
        out = await client.post("/logout", headers=headers)
        refused = [(await _login(client, f"guess-{n}")).status_code for n in range(7)]
    assert (wrong.status_code, out.status_code) == (401, 200)
    assert refused == [401] * 5 + [429] * 2

    rows = _rows(database_url, mark)
    assert [(row["action"], row["actor"]) for row in rows] == [
        ("login_failed", "anonymous"),
        ("login_succeeded", "operator"),
        ("logout", "operator"),
        *[("login_failed", "anonymous")] * 5,
        # the second refusal within a minute is not written: a flood stays one row
        ("login_throttled", "anonymous"),
    ]
    assert all(row["client"] == CLIENT and _recent(row["at"]) for row in rows)
    assert rows[-1]["details"]["retry_after"] > 0
    assert "guess" not in json.dumps([row["details"] for row in rows])  # passwords tried


async def test_a_save_records_old_and_new_values_with_the_change(
    client_for: ClientFor, database_url: str
) -> None:
    async with client_for(admin_password=PASSWORD) as client:
        headers = await _operator_headers(client)
        before = (await client.get("/config")).json()["settings"]
        old_model, old_date = before["llm_model"]["value"], before["event_date"]["value"]
        new_model = "audit-model-a" if old_model != "audit-model-a" else "audit-model-b"
        mark = _mark(database_url)
        saved = await client.post(
            "/config", json={"llm_model": new_model, "event_date": "2031-01-02"}, headers=headers
        )
        refused = await client.post(
            "/config", json={"llm_model": "another-model", "event_date": "soon"}, headers=headers
        )
        unchanged = await client.post("/config", json={"llm_model": new_model}, headers=headers)
    assert (saved.status_code, refused.status_code, unchanged.status_code) == (200, 422, 200)

    [row] = _rows(database_url, mark)  # nothing for the refused save, nor the empty one
    assert (row["action"], row["actor"], row["client"]) == ("settings_saved", "operator", CLIENT)
    assert _recent(row["at"])
    assert row["details"] == {
        "changes": {
            "event_date": {"from": old_date, "to": "2031-01-02"},
            "llm_model": {"from": old_model, "to": new_model},
        }
    }


async def test_connection_tests_record_the_service_and_its_result(
    client_for: ClientFor, database_url: str
) -> None:
    async with client_for(admin_password=PASSWORD) as client:
        headers = await _operator_headers(client)
        mark = _mark(database_url)
        tested = await client.post("/config/test/redis", headers=headers)
        unknown = await client.post("/config/test/nothing", headers=headers)
    assert (tested.status_code, unknown.status_code) == (200, 404)
    [row] = _rows(database_url, mark)
    assert (row["action"], row["actor"], row["client"]) == ("connection_tested", "operator", CLIENT)
    assert row["details"] == {"service": "redis", "status": tested.json()["status"]}


async def test_no_secret_ever_reaches_the_trail(client_for: ClientFor, database_url: str) -> None:
    """A configured secret pasted into a runtime value, a credential in an endpoint's query,
    passwords typed at the login: the whole table is scanned for each."""
    secrets = {
        "admin_password": PASSWORD,
        "llm_api_key": API_KEY,
        "mcp_token": "mcp-token-abcdefghijklmnop",
    }
    mark = _mark(database_url)
    async with client_for(**secrets) as client:
        await _login(client, API_KEY)  # a secret typed as a password guess
        await _login(client, PASSWORD + "x")
        headers = await _operator_headers(client)
        pasted = await client.post("/config", json={"llm_model": API_KEY}, headers=headers)
        endpoint = f"http://127.0.0.1:9/v1?api-version=2024-06-01&token={QUERY_SECRET}"
        await client.post("/config", json={"llm_endpoint": endpoint}, headers=headers)
        await client.post("/config/test/llm", headers=headers)
        await client.post("/config", json={"llm_model": "llama3.2"}, headers=headers)
    assert pasted.status_code == 200

    with psycopg.connect(database_url) as connection:
        table = [text for (text,) in connection.execute("SELECT a::text FROM audit_events a")]
    assert table
    for secret in (*secrets.values(), QUERY_SECRET, PASSWORD + "x"):
        assert not [text for text in table if secret in text], f"{secret!r} is in the trail"
    # The values were recorded, masked: the scan above looked at rows that hold them.
    saved = [row for row in _rows(database_url, mark) if row["action"] == "settings_saved"]
    assert saved[0]["details"]["changes"]["llm_model"]["to"] == "***"


def test_urls_lose_user_info_and_query_values() -> None:
    assert mask_urls("see http://u:p@h:1/x?token=s&api-version=1&flag#frag now") == (
        "see http://***@h:1/x?token=***&api-version=1&***#*** now"
    )
    assert mask_urls("no url here, token=s") == "no url here, token=s"


async def test_details_are_json_without_secrets(engine: AsyncEngine) -> None:
    trail = AuditTrail(
        async_sessionmaker(engine), secrets=["s3cret-value"], sensitive_keys={"notify_urls"}
    )
    cleaned = trail.clean(
        {
            "api_token": "abc",
            "notify_urls": "mailto://x",
            "configured": True,
            "note": "pasted s3cret-value here\x00",
            "ratio": float("nan"),
            "nested": {"password": "p", "scopes": ("read", "write")},
        }
    )
    assert cleaned == {
        "api_token": "***",
        "notify_urls": "***",
        "configured": True,
        "note": "pasted *** here\ufffd",
        "ratio": "nan",
        "nested": {"password": "***", "scopes": ["read", "write"]},
    }


@contextmanager
def _aged_events(database_url: str, *days: int) -> Iterator[list[int]]:
    """Events recorded ``days`` ago, deleted afterwards if still there."""
    with psycopg.connect(database_url) as connection:
        ids = [
            connection.execute(
                "INSERT INTO audit_events (at, action, actor, details)"
                " VALUES (now() - make_interval(days => %s), 'logout', 'operator', %s)"
                " RETURNING id",
                (age, Jsonb({"age_days": age})),
            ).fetchone()[0]  # type: ignore[index]
            for age in days
        ]
    try:
        yield ids
    finally:
        with psycopg.connect(database_url) as connection:
            connection.execute("DELETE FROM audit_events WHERE id = ANY(%s)", (ids,))


def _present(database_url: str, ids: list[int]) -> list[int]:
    with psycopg.connect(database_url) as connection:
        found = connection.execute(
            "SELECT id FROM audit_events WHERE id = ANY(%s) ORDER BY id", (ids,)
        ).fetchall()
    return [row[0] for row in found]


async def test_events_older_than_90_days_are_pruned(engine: AsyncEngine, database_url: str) -> None:
    trail = AuditTrail(async_sessionmaker(engine))
    with _aged_events(database_url, 91, 89) as (old, young):
        assert await trail.prune() >= 1
        assert _present(database_url, [old, young]) == [young]


async def test_recording_prunes_at_most_once_a_day(engine: AsyncEngine, database_url: str) -> None:
    trail = AuditTrail(async_sessionmaker(engine))
    with _aged_events(database_url, 120) as [first]:
        await trail.record("logout", actor="operator", client=CLIENT)  # the first prunes
        assert _present(database_url, [first]) == []
    with _aged_events(database_url, 120) as [second]:
        await trail.record("logout", actor="operator", client=CLIENT)
        assert _present(database_url, [second]) == [second]  # pruned less than a day ago


async def test_start_up_prunes(client_for: ClientFor, database_url: str) -> None:
    with _aged_events(database_url, 100) as [old]:
        async with client_for() as client:
            assert (await client.get("/livez")).status_code == 200
        assert _present(database_url, [old]) == []


@pytest.fixture
async def served_on_own_database(
    client_for: ClientFor, fresh_database: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a database of the test's own, migrated at start-up."""
    async with client_for(admin_password=PASSWORD, database_url=fresh_database) as client:
        yield client


async def test_logins_work_while_the_trail_cannot_be_written(
    served_on_own_database: httpx.AsyncClient, fresh_database: str
) -> None:
    """The database goes away after the operator logged in: a wrong password, a connection
    test and a logout answer as they would, never a 500; the lost events are only logged.
    A new login needs the session table, so it is a 503 with the reason."""
    client = served_on_own_database
    right = await _login(client)
    headers = {"X-CSRF-Token": right.json()["csrf_token"]}
    drop_database(fresh_database)
    wrong = await _login(client, "guess")
    tested = await client.post("/config/test/db", headers=headers)
    out = await client.post("/logout", headers=headers)
    again = await _login(client)
    assert [right.status_code, wrong.status_code, tested.status_code, out.status_code] == [
        200,
        401,
        200,
        200,
    ]
    assert again.status_code == 503
    assert tested.json()["status"] == "unreachable"


async def test_the_activity_page_is_the_operators_only(
    client_for: ClientFor, database_url: str
) -> None:
    async with client_for(admin_password=PASSWORD) as client:
        mark = _mark(database_url)
        anonymous = await client.get("/activity")
        browser = await client.get("/activity", headers={"Accept": "text/html"})
        await _login(client, "guess-activity")
        await _operator_headers(client)
        page = await client.get("/activity", headers={"Accept": "text/html"})
        first = (await client.get("/activity?limit=2")).json()
        second = (await client.get(f"/activity?limit=2&before={first['older']}")).json()
        bad = [
            (await client.get(f"/activity?{query}")).status_code
            for query in ("limit=0", "limit=501", f"before={2**63}", "before=x")
        ]
    assert anonymous.status_code == 401
    assert (browser.status_code, browser.headers["location"]) == (303, "/login?next=/activity")

    assert page.status_code == 200
    assert '<a href="/activity" aria-current="page">Activity</a>' in page.text
    assert '<th scope="col">Actor</th>' in page.text
    newest = _rows(database_url, mark)
    assert [row["action"] for row in newest] == ["login_failed", "login_succeeded"]
    body = page.text
    assert body.index(f'id="event-{newest[1]["id"]}"') < body.index(f'id="event-{newest[0]["id"]}"')
    assert "reason: wrong password" in body

    ids = [event["id"] for event in first["events"] + second["events"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == len(set(ids)) == 4
    assert first["events"][0]["id"] == newest[1]["id"]
    assert first["events"][0]["actor"] == "operator"
    assert first["events"][0]["client"] == CLIENT
    assert bad == [422] * 4


@pytest.fixture
def migrated(fresh_database: str, tmp_path: Path) -> str:
    """A database of the test's own, migrated by `hearth migrate`."""
    result = run_hearth("migrate", env=clean_environment(DATABASE_URL=fresh_database), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return fresh_database


def test_hearth_audit_prints_what_the_import_recorded(migrated: str, tmp_path: Path) -> None:
    env = clean_environment(DATABASE_URL=migrated, LLM_API_KEY=API_KEY)
    export = tmp_path / "settings.json"
    export.write_text(json.dumps({"llm_model": "qwen2.5:7b", "embedding_model": API_KEY}))
    imported = run_hearth("settings", "import", str(export), env=env, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr

    listed = run_hearth("audit", env=env, cwd=tmp_path)
    as_json = run_hearth("audit", "--json", "--limit", "1", env=env, cwd=tmp_path)
    assert listed.returncode == as_json.returncode == 0, listed.stderr + as_json.stderr

    header, line = listed.stdout.splitlines()
    assert header.split() == ["TIME", "(UTC)", "ACTOR", "CLIENT", "ACTION", "DETAILS"]
    assert line.split()[2:5] == ["cli", "-", "settings_imported"]
    assert 'llm_model: (unset) → "qwen2.5:7b"' in line
    assert API_KEY not in listed.stdout + as_json.stdout

    [event] = json.loads(as_json.stdout)
    assert (event["action"], event["actor"], event["client"]) == ("settings_imported", "cli", None)
    assert event["details"]["imported"] == ["embedding_model", "llm_model"]
    assert event["details"]["changes"]["embedding_model"] == {"from": None, "to": "***"}
    assert _recent(datetime.fromisoformat(event["at"]))


def test_hearth_audit_says_what_is_wrong(fresh_database: str, tmp_path: Path) -> None:
    env = clean_environment(DATABASE_URL=fresh_database)
    unmigrated = run_hearth("audit", env=env, cwd=tmp_path)
    bad_limit = run_hearth("audit", "--limit", "0", env=env, cwd=tmp_path)
    assert unmigrated.returncode == 1
    assert "has no audit_events table yet: run `hearth migrate` first" in unmigrated.stderr
    assert "Traceback" not in unmigrated.stderr
    assert bad_limit.returncode == 2
    assert "--limit: must be a whole number of at least 1, not '0'" in bad_limit.stderr


async def test_tokens_created_and_revoked_leave_rows_without_the_token(
    client_for: ClientFor, database_url: str, tmp_path: Path
) -> None:
    """On the Tokens page (actor: the operator) and with `hearth token` (actor: cli): the
    name and scopes are recorded, the token itself never."""
    mark = _mark(database_url)
    async with client_for(admin_password=PASSWORD) as client:
        headers = await _operator_headers(client)
        created = await client.post(
            "/tokens", json={"name": "audit-page", "scopes": ["read"]}, headers=headers
        )
        revoked = await client.post("/tokens/revoke", json={"name": "audit-page"}, headers=headers)
    env = clean_environment(DATABASE_URL=database_url)
    made = run_hearth("token", "create", "audit-cli", "--scope", "write", env=env, cwd=tmp_path)
    unmade = run_hearth("token", "revoke", "audit-cli", env=env, cwd=tmp_path)
    assert (created.status_code, revoked.status_code) == (201, 200), created.text
    assert (made.returncode, unmade.returncode) == (0, 0), made.stderr + unmade.stderr

    rows = [row for row in _rows(database_url, mark) if row["action"].startswith("token_")]
    assert [(row["action"], row["actor"], row["details"]["name"]) for row in rows] == [
        ("token_created", "operator", "audit-page"),
        ("token_revoked", "operator", "audit-page"),
        ("token_created", "cli", "audit-cli"),
        ("token_revoked", "cli", "audit-cli"),
    ]
    assert rows[0]["details"]["scopes"] == ["read"]
    assert (rows[0]["client"], rows[2]["client"]) == (CLIENT, None)
    secrets = [created.json()["token"], made.stdout.splitlines()[-1]]
    assert not [secret for secret in secrets if secret in json.dumps(rows, default=str)]
