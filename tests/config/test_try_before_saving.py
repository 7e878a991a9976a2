"""Test before you save, through the real app on real PostgreSQL and a fake LLM server that
speaks the real APIs: the LLM is tried with the values sent (validated, never saved), within
an explicit test's own budget, with the key still bound to its origin; saving a server that
does not answer warns beside the field; the login page says why one is there."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.app.factory import create_app
from hearth.config.connections import LLMTrier
from hearth.config.settings import Settings
from hearth.llm.provider import LLMProvider
from hearth.models import Setting
from tests.config.test_bound_secrets import API_KEY, keys_received
from tests.config.test_config import PASSWORD, operator_client
from tests.support.app import served
from tests.support.fake_llm import fake_llm
from tests.support.services import free_port

HTML = {"Accept": "text/html"}
HTMX = {"HX-Request": "true"}


async def stored(engine: AsyncEngine) -> dict[str, str]:
    """The runtime values in the database."""
    async with engine.connect() as connection:
        return dict((await connection.execute(sa.select(Setting.key, Setting.value))).all())


async def test_the_config_page_tries_servers_with_the_llm_provider() -> None:
    """The config package names what it needs (``LLMTrier``) and the LLM provider is one,
    typed here: mypy holds the two to each other without either package importing the
    other."""
    with fake_llm() as server:
        async with httpx.AsyncClient() as client:
            trier: LLMTrier = LLMProvider(lambda: client, None)
            result, models = await trier.try_out("ollama", server.url, within=5.0)
            silent, none = await trier.try_out(
                "ollama", f"http://127.0.0.1:{free_port()}", within=5.0
            )
    assert (result.status, models) == ("ok", ("llama3.2:1b",))
    assert (silent.status, none) == ("unreachable", ())


@pytest.mark.usefixtures("clean_settings")
async def test_the_llm_is_tried_with_the_values_sent_and_nothing_is_saved(
    make_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    with fake_llm() as server:
        async with operator_client(make_settings) as client:
            typed = {"llm_endpoint": server.url, "llm_model": "llama3.2:1b"}
            tried = await client.post("/config/test/llm", json=typed)
            fragment = await client.post(
                "/config/test/llm",
                data={**typed, "csrf_token": client.headers["X-CSRF-Token"]},
                headers=HTMX,
            )
            saved = (await client.get("/config")).json()["settings"]
    assert tried.status_code == 200, tried.text
    answer = tried.json()
    assert (answer["status"], answer["unsaved"]) == ("ok", True)
    assert answer["detail"] == f"Ollama at {server.url}, 1 model"
    assert answer["models"] == ["llama3.2:1b"]
    # The embedding model left at its default is not on this server: said, not refused.
    assert answer["notes"] == ["Embedding model nomic-embed-text is not on this server."]
    assert [r.path for r in server.received] == ["/api/tags", "/api/tags"]
    assert await stored(engine) == {}
    assert saved["llm_endpoint"]["source"] == "default"
    # For htmx: the result, the fields drawn again as typed, the models as choices.
    assert "Values in the form (not saved), tested at" in fragment.text
    assert re.search(r"in \d+ ms", fragment.text)
    assert '<datalist id="llm-models" hx-swap-oob="true"><option value="llama3.2:1b">' in (
        fragment.text
    )
    assert f'id="llm_endpoint" name="llm_endpoint" value="{server.url}"' in fragment.text
    assert 'id="field-llm_endpoint" hx-swap-oob="true"' in fragment.text


@pytest.mark.usefixtures("clean_settings")
@pytest.mark.parametrize(
    ("typed", "field", "says"),
    [
        ({"llm_endpoint": "not a url"}, "llm_endpoint", "must be an http:// or https:// URL"),
        ({"llm_provider": "anthropic"}, "llm_provider", "must be one of: ollama, openai"),
        ({"llm_model": "llama 3; rm -rf"}, "llm_model", "may hold letters, digits"),
    ],
)
async def test_a_test_validates_the_values_as_a_save_does(
    make_settings: Callable[..., Settings],
    engine: AsyncEngine,
    typed: dict[str, str],
    field: str,
    says: str,
) -> None:
    async with operator_client(make_settings) as client:
        as_json = await client.post("/config/test/llm", json=typed)
        as_htmx = await client.post(
            "/config/test/llm",
            data={**typed, "csrf_token": client.headers["X-CSRF-Token"]},
            headers=HTMX,
        )
    assert as_json.status_code == 422
    assert f"{field}: {says}" in as_json.json()["detail"]
    assert as_htmx.status_code == 422
    # The message sits beside its field, tied to it, and the field keeps what was typed.
    assert f'<p class="error" id="{field}-error">{says}' in as_htmx.text
    assert re.search(
        rf'aria-describedby="{field}-help[^"]* {field}-error" aria-invalid="true"', (as_htmx.text)
    )
    assert "not tested" in as_htmx.text
    assert await stored(engine) == {}


@pytest.mark.usefixtures("clean_settings")
async def test_a_typed_endpoint_elsewhere_never_gets_the_key(
    make_settings: Callable[..., Settings],
) -> None:
    """The key stays bound to its origin whatever the form says: a listener typed into the
    form is asked without it, the bound server with it."""
    with fake_llm() as bound, fake_llm() as listener:
        bound.api_key = API_KEY
        async with operator_client(
            make_settings, llm_api_key=API_KEY, llm_trusted_origin=bound.url
        ) as client:
            elsewhere = await client.post(
                "/config/test/llm",
                json={"llm_provider": "openai", "llm_endpoint": listener.url + "/v1"},
            )
            fragment = await client.post(
                "/config/test/llm",
                data={
                    "llm_provider": "openai",
                    "llm_endpoint": listener.url,
                    "csrf_token": client.headers["X-CSRF-Token"],
                },
                headers=HTMX,
            )
            at_home = await client.post(
                "/config/test/llm", json={"llm_provider": "openai", "llm_endpoint": bound.url}
            )
    assert len(listener.received) == 2
    assert keys_received(listener) == []
    assert elsewhere.json()["status"] == "ok"
    assert elsewhere.json()["detail"].endswith(
        f"may be sent only to {bound.url} (named by LLM_TRUSTED_ORIGIN in the environment)"
    )
    # The field beside the typed endpoint says the key would be withheld there.
    assert '<p class="key-use withheld" id="llm_endpoint-key">LLM_API_KEY is withheld' in (
        fragment.text
    )
    assert at_home.json()["status"] == "ok"
    assert at_home.json()["models"] == ["gpt-4o-mini"]
    assert keys_received(bound) == [f"Authorization: Bearer {API_KEY}"]


@pytest.mark.usefixtures("clean_settings")
async def test_an_explicit_test_waits_longer_than_a_probe(
    make_settings: Callable[..., Settings],
) -> None:
    """A server answering after 2.5 s: past a health probe's 1.5 s, within a test's 5 s."""
    with fake_llm() as slow:
        slow.mode, slow.delay = "slow", 2.5
        async with operator_client(make_settings) as client:
            await client.post("/config", json={"llm_endpoint": slow.url})
            probe = (await client.get("/health")).json()["checks"]["llm"]
            tested = (await client.post("/config/test/llm")).json()
    assert probe["status"] == "unreachable"
    assert "within 1.5 s" in probe["detail"]
    assert tested["status"] == "ok", tested


@pytest.mark.usefixtures("clean_settings")
async def test_saving_a_server_that_does_not_answer_warns_beside_the_field(
    make_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with fake_llm() as alive:
        async with operator_client(make_settings) as client:
            as_json = await client.post("/config", json={"llm_endpoint": dead})
            as_form = await client.post(
                "/config",
                data={"llm_endpoint": alive.url, "csrf_token": client.headers["X-CSRF-Token"]},
                headers=HTML,
            )
            fine = await client.get("/config", headers=HTML)
            await client.post(
                "/config",
                data={
                    "llm_endpoint": dead,
                    "event_date": "2026-12-24",
                    "csrf_token": client.headers["X-CSRF-Token"],
                },
                headers=HTML,
            )
            warned = await client.get("/config", headers=HTML)
            again = await client.get("/config", headers=HTML)
    assert as_json.status_code == 200
    assert as_json.json()["saved"] == ["llm_endpoint"]
    warning = as_json.json()["warnings"]["llm_endpoint"]
    assert warning.startswith(f"Saved, but {dead} does not answer: cannot connect to {dead}")
    assert as_form.status_code == 303
    assert '<p class="flash success" role="status">Saved: LLM endpoint.</p>' in fine.text
    assert 'id="llm_endpoint-note"' not in fine.text
    # Saved (it is the operator's call), with the warning beside the field, tied to it.
    assert await stored(engine) == {"llm_endpoint": dead, "event_date": "2026-12-24"}
    assert '<p class="flash warning" role="status">Saved: Event date, LLM endpoint.' in (
        warned.text
    )
    assert f'<p class="note warning" id="llm_endpoint-note">Saved, but {dead} does not answer' in (
        warned.text
    )
    assert 'aria-describedby="llm_endpoint-help llm_endpoint-note"' in warned.text
    assert "llm_endpoint-note" not in again.text  # said once


@pytest.mark.usefixtures("clean_settings")
async def test_a_refused_date_comes_back_as_typed_with_its_error(
    make_settings: Callable[..., Settings],
) -> None:
    async with operator_client(make_settings) as client:
        page = await client.get("/config", headers=HTML)
        refused = await client.post(
            "/config",
            data={
                "event_date": "2026-02-30",
                "llm_endpoint": "ftp://nowhere",
                "csrf_token": client.headers["X-CSRF-Token"],
            },
            headers=HTML,
        )
    # Beside a picker, no format the picker does not show.
    assert 'type="date"' in page.text
    assert "pick one, or leave it empty" in page.text
    assert refused.status_code == 422
    text = refused.text
    assert "<title>Error: LLM endpoint and Event date need attention · Config · Hearth" in text
    assert 'id="event_date" name="event_date" value="2026-02-30"\n    type="text"' in text
    assert 'aria-describedby="event_date-help event_date-error" aria-invalid="true"' in text
    assert '<a href="#event_date">Event date: must be a date written YYYY-MM-DD' in text
    assert 'role="alert" aria-labelledby="error-summary-title" tabindex="-1" autofocus' in text


@pytest.mark.usefixtures("clean_settings")
async def test_sources_and_buttons_are_named_in_plain_words(
    make_settings: Callable[..., Settings],
) -> None:
    async with operator_client(make_settings, llm_model="pinned") as client:
        await client.post("/config", json={"embedding_model": "bge-m3"})
        page = (await client.get("/config", headers=HTML)).text
    assert '<span class="source environment">set in the environment</span>' in page
    assert '<span class="source database">saved here</span>' in page
    assert '<span class="source default">default</span>' in page
    assert "Set by LLM_MODEL in the environment" in page
    names = re.findall(r'aria-label="Test connection: (\w+)"', page)
    assert sorted(names) == ["Database", "LLM", "Mail", "Redis", "Worker"]
    assert page.count('hx-disabled-elt="this"') == 5


async def test_the_login_page_says_why_and_where_the_password_is(
    make_settings: Callable[..., Settings],
) -> None:
    async with served(create_app(make_settings(admin_password=PASSWORD))) as client:
        sent = await client.get("/config", headers=HTML, follow_redirects=True)
        own_accord = await client.get("/login", headers=HTML)
        elsewhere = await client.get("/login?next=/tasks", headers=HTML)
        forged = await client.get("/login?next=/config&reason=<b>pwned</b>", headers=HTML)
        token = (await client.get("/login")).json()["csrf_token"]
        await client.post("/login", json={"password": PASSWORD}, headers={"X-CSRF-Token": token})
        token = (await client.get("/login")).json()["csrf_token"]
        out = await client.post(
            "/logout", data={"csrf_token": token}, headers=HTML, follow_redirects=True
        )
        after = await client.get("/", headers=HTML)
    assert sent.url.path == "/login"
    assert "Log in to change settings." in sent.text
    assert "login-reason" not in own_accord.text
    assert "Log in to see this page." in elsewhere.text
    assert "pwned" not in forged.text
    for where in ("<code>.env</code>", "<code>secrets/admin_password</code>", "Secret", "systemd"):
        assert where in own_accord.text
    assert out.url.path == "/"
    assert '<p class="flash success" role="status">You are logged out.</p>' in out.text
    assert "You are logged out." not in after.text


async def test_a_session_that_ended_is_named_on_the_login_page(
    make_settings: Callable[..., Settings],
) -> None:
    """The operator's session is ended server-side (as a new password or expiry would):
    the login page the browser is sent to says so."""
    app = create_app(make_settings(admin_password=PASSWORD))
    async with served(app) as client:
        token = (await client.get("/login")).json()["csrf_token"]
        await client.post("/login", json={"password": PASSWORD}, headers={"X-CSRF-Token": token})
        cookie = dict(client.cookies)
        token = (await client.get("/login")).json()["csrf_token"]
        await client.post("/logout", headers={"X-CSRF-Token": token})
        client.cookies.clear()
        client.cookies.update(cookie)  # a copy of the cookie from before the logout
        sent = await client.get("/config", headers=HTML, follow_redirects=True)
    assert isinstance(sent, httpx.Response)
    assert sent.url.path == "/login"
    assert "Your session ended: log in again to carry on." in sent.text
