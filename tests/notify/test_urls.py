"""NOTIFY_URLS: read as a list, checked at start-up without echoing it, kept out of logs."""

from __future__ import annotations

import pytest

from hearth.config.loader import load_settings
from hearth.errors import StartupError
from hearth.notify.urls import BadNotifyUrl, scheme_of, secret_parts, split_urls
from tests.support.process import TEST_SECRET_KEY

TOKEN = "AbCdEf0123456789xyz"


def test_urls_are_split_on_spaces_and_commas_but_a_comma_inside_a_url_stays() -> None:
    text = (
        f" ntfy://ntfy.example.com/{TOKEN},  gotify://gotify.lan/{TOKEN}\n"
        "mailto://127.0.0.1:25?to=a@example.com,b@example.com, json://127.0.0.1:9/ "
    )
    assert split_urls(text) == [
        f"ntfy://ntfy.example.com/{TOKEN}",
        f"gotify://gotify.lan/{TOKEN}",
        "mailto://127.0.0.1:25?to=a@example.com,b@example.com",
        "json://127.0.0.1:9/",
    ]
    assert [scheme_of(url) for url in split_urls(text)] == ["ntfy", "gotify", "mailto", "json"]


def test_an_entry_that_is_no_url_is_named_by_position_only() -> None:
    with pytest.raises(BadNotifyUrl) as refused:
        split_urls(f"ntfy://ntfy.sh/{TOKEN} {TOKEN}")
    assert refused.value.position == 2
    assert TOKEN not in str(refused.value)


def test_a_bad_notify_urls_stops_start_up_naming_the_variable_not_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_URLS", f"tgram://{TOKEN}/1234 oops-{TOKEN}")
    with pytest.raises(StartupError) as refused:
        load_settings(_env_file=None, secret_key=TEST_SECRET_KEY)
    message = refused.value.message
    assert "NOTIFY_URLS: entry 2 of 2 is not a URL" in message
    assert TOKEN not in message


def test_each_url_is_a_secret_masked_in_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    urls = f"discord://123456789/{TOKEN}, json://127.0.0.1:9/hook"
    monkeypatch.setenv("NOTIFY_URLS", urls)
    settings = load_settings(_env_file=None, secret_key=TEST_SECRET_KEY)
    secrets = settings.secret_values()
    assert f"discord://123456789/{TOKEN}" in secrets
    assert TOKEN in secrets  # alone: a library may log the path without the rest
    assert "json://127.0.0.1:9/hook" in secrets
    assert "hook" not in secrets  # an ordinary word stays readable in every other line
    assert "notify_urls" not in settings.public_summary()


def test_an_empty_notify_urls_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_URLS", "  ")
    assert load_settings(_env_file=None, secret_key=TEST_SECRET_KEY).notify_urls is None


def test_the_parts_of_a_url_that_may_be_credentials() -> None:
    parts = secret_parts(f"tgram://987654:{TOKEN}/123456789?key=q{TOKEN}&mode=insecure")
    assert f"987654:{TOKEN}" in parts  # Telegram's bot token sits where a host would
    assert TOKEN in parts
    assert "123456789" in parts
    assert f"q{TOKEN}" in parts
    assert "insecure" not in parts  # an option, not a credential
    named = secret_parts(f"ntfys://user:pass{TOKEN}@ntfy.example.com/alerts-{TOKEN}")
    assert f"pass{TOKEN}" in named
    assert f"alerts-{TOKEN}" in named
    assert "ntfy.example.com" not in named  # a host name is no credential
