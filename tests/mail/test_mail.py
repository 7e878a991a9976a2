"""The ``mail`` check: IMAP against a real Dovecot on loopback, Gmail OAuth against a double
of Google's token endpoint speaking its real protocol. No secret may reach a detail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hearth.kit.checks import CheckResult
from hearth.mail.adapter import MailAdapter
from hearth.mail.imap import ImapAdapter
from tests.support.fake_llm import black_hole
from tests.support.mail import FakeGoogleTokenEndpoint, ImapServer
from tests.support.services import free_port


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def gmail_settings(endpoint: FakeGoogleTokenEndpoint, **overrides: Any) -> dict[str, Any]:
    """The adapter's Gmail arguments for the client and token the double knows."""
    values = {
        "gmail_client_id": endpoint.client_id,
        "gmail_client_secret": endpoint.client_secret,
        "gmail_refresh_token": endpoint.refresh_token,
        "token_url": endpoint.url,
    }
    return values | overrides


def imap_settings(server: ImapServer, **overrides: Any) -> dict[str, Any]:
    """The adapter's IMAP arguments for the test user over implicit TLS."""
    values = {
        "imap_host": server.host,
        "imap_user": server.user,
        "imap_password": server.password,
        "imap_port": server.tls_port,
        "imap_tls": "ssl",
        "imap_ca_file": server.ca_file,
    }
    return values | overrides


def gmail_adapter(
    http: httpx.AsyncClient, endpoint: FakeGoogleTokenEndpoint, **overrides: Any
) -> MailAdapter:
    return MailAdapter(lambda: http, **gmail_settings(endpoint, **overrides))


def imap_adapter(server: ImapServer, **overrides: Any) -> MailAdapter:
    return MailAdapter(_no_http, **imap_settings(server, **overrides))


def _no_http() -> httpx.AsyncClient:
    raise AssertionError("an IMAP-only check must not build an HTTP client")


def assert_no_secret(result: CheckResult, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.detail
        assert secret not in result.model_dump_json()


# --- Gmail OAuth ---------------------------------------------------------------------------


async def test_gmail_ok_refreshes_the_token_with_a_form_post(
    http: httpx.AsyncClient, token_endpoint: FakeGoogleTokenEndpoint
) -> None:
    adapter = gmail_adapter(http, token_endpoint)

    result = await adapter.check()

    assert result.status == "ok", result.detail
    assert result.detail == (
        "Gmail OAuth token refreshed for client 1234…apps.googleusercontent.com"
    )
    assert result.latency_ms > 0
    assert token_endpoint.content_types == ["application/x-www-form-urlencoded"]
    assert token_endpoint.requests == [
        {
            "grant_type": "refresh_token",
            "client_id": token_endpoint.client_id,
            "client_secret": token_endpoint.client_secret,
            "refresh_token": token_endpoint.refresh_token,
        }
    ]
    assert_no_secret(
        result, token_endpoint.client_secret, token_endpoint.refresh_token, *token_endpoint.issued
    )
    shown = repr(adapter)
    assert token_endpoint.client_secret not in shown
    assert token_endpoint.refresh_token not in shown


async def test_gmail_revoked_refresh_token_says_how_to_get_a_new_one(
    http: httpx.AsyncClient, token_endpoint: FakeGoogleTokenEndpoint
) -> None:
    token_endpoint.revoked = True

    result = await gmail_adapter(http, token_endpoint).check()

    assert result.status == "unreachable"
    assert "invalid_grant" in result.detail
    assert "revoked or has expired" in result.detail
    assert "GMAIL_REFRESH_TOKEN" in result.detail
    assert "consent" in result.detail
    assert_no_secret(result, token_endpoint.client_secret, token_endpoint.refresh_token)


async def test_gmail_wrong_refresh_token_is_invalid_grant(
    http: httpx.AsyncClient, token_endpoint: FakeGoogleTokenEndpoint
) -> None:
    wrong = "1//0g-not-the-token-google-issued-0123456789"

    result = await gmail_adapter(http, token_endpoint, gmail_refresh_token=wrong).check()

    assert result.status == "unreachable"
    assert "invalid_grant" in result.detail
    assert_no_secret(result, wrong, token_endpoint.client_secret)


async def test_gmail_invalid_client_names_the_variables_to_check(
    http: httpx.AsyncClient, token_endpoint: FakeGoogleTokenEndpoint
) -> None:
    wrong_secret = "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t"

    result = await gmail_adapter(http, token_endpoint, gmail_client_secret=wrong_secret).check()

    assert result.status == "unreachable"
    assert "invalid_client" in result.detail
    assert "GMAIL_CLIENT_ID and GMAIL_CLIENT_SECRET" in result.detail
    assert "1234…apps.googleusercontent.com" in result.detail
    assert token_endpoint.client_id not in result.detail  # shortened, not whole
    assert_no_secret(
        result, wrong_secret, token_endpoint.client_secret, token_endpoint.refresh_token
    )


async def test_gmail_token_endpoint_down(http: httpx.AsyncClient) -> None:
    port = free_port()
    adapter = MailAdapter(
        lambda: http,
        gmail_client_id="1234-abc.apps.googleusercontent.com",
        gmail_client_secret="GOCSPX-secret-value-0001",
        gmail_refresh_token="1//refresh-token-value-0001",
        token_url=f"http://127.0.0.1:{port}/token",
    )

    result = await adapter.check()

    assert result.status == "unreachable"
    assert f"127.0.0.1:{port}" in result.detail
    assert_no_secret(result, "GOCSPX-secret-value-0001", "1//refresh-token-value-0001")


async def test_gmail_token_endpoint_too_slow(
    http: httpx.AsyncClient, token_endpoint: FakeGoogleTokenEndpoint
) -> None:
    token_endpoint.mode, token_endpoint.delay = "slow", 1.0

    result = await gmail_adapter(http, token_endpoint, timeout=0.2).check()

    assert result.status == "unreachable"
    assert "did not answer within 0.2 s" in result.detail
    assert result.latency_ms < 900


async def test_gmail_token_endpoint_answers_something_else(
    http: httpx.AsyncClient, token_endpoint: FakeGoogleTokenEndpoint
) -> None:
    token_endpoint.mode = "garbage"

    result = await gmail_adapter(http, token_endpoint).check()

    assert result.status == "unreachable"
    assert "without OAuth JSON" in result.detail
    assert "HTTP 200" in result.detail


async def test_gmail_configured_in_part_names_what_is_missing(
    http: httpx.AsyncClient, token_endpoint: FakeGoogleTokenEndpoint
) -> None:
    adapter = gmail_adapter(http, token_endpoint, gmail_refresh_token=None)

    result = await adapter.check()

    assert result.status == "unreachable"
    assert "GMAIL_REFRESH_TOKEN is not set" in result.detail
    assert "GMAIL_CLIENT_ID and GMAIL_CLIENT_SECRET set" in result.detail
    assert token_endpoint.requests == []
    assert_no_secret(result, token_endpoint.client_secret)


# --- IMAP ----------------------------------------------------------------------------------


async def test_imap_login_over_implicit_tls(dovecot: ImapServer) -> None:
    adapter = imap_adapter(dovecot)

    result = await adapter.check()

    assert result.status == "ok", result.detail
    assert result.detail == f"IMAP login as {dovecot.user} at 127.0.0.1:{dovecot.tls_port} (TLS)"
    assert_no_secret(result, dovecot.password)
    assert dovecot.password not in repr(adapter)


async def test_imap_login_over_starttls(dovecot: ImapServer) -> None:
    adapter = imap_adapter(dovecot, imap_port=dovecot.port, imap_tls="starttls")

    result = await adapter.check()

    assert result.status == "ok", result.detail
    assert result.detail.endswith(f"127.0.0.1:{dovecot.port} (STARTTLS)")
    assert_no_secret(result, dovecot.password)


async def test_imap_login_without_tls(dovecot: ImapServer) -> None:
    result = await imap_adapter(dovecot, imap_port=dovecot.port, imap_tls="none").check()

    assert result.status == "ok", result.detail
    assert result.detail.endswith("(no TLS)")
    assert_no_secret(result, dovecot.password)


async def test_imap_wrong_password(own_dovecot: ImapServer) -> None:
    wrong = "not-" + own_dovecot.password

    result = await imap_adapter(own_dovecot, imap_password=wrong).check()

    assert result.status == "unreachable"
    assert f"refused the login as {own_dovecot.user}" in result.detail
    assert "AUTHENTICATIONFAILED" in result.detail
    assert "IMAP_PASSWORD" in result.detail
    assert_no_secret(result, wrong, own_dovecot.password)


async def test_imap_certificate_of_an_unknown_ca_is_refused(dovecot: ImapServer) -> None:
    # Verification stays on: without the test CA, the certificate is not trusted.
    result = await imap_adapter(dovecot, imap_ca_file=None).check()

    assert result.status == "unreachable"
    assert "TLS certificate not accepted" in result.detail
    assert "IMAP_CA_FILE" in result.detail
    assert_no_secret(result, dovecot.password)


async def test_imap_tls_mode_that_does_not_fit_the_port(dovecot: ImapServer) -> None:
    result = await imap_adapter(dovecot, imap_port=dovecot.port, imap_tls="ssl").check()

    assert result.status == "unreachable"
    assert "IMAP_TLS=ssl" in result.detail
    assert_no_secret(result, dovecot.password)


async def test_imap_connection_refused() -> None:
    port = free_port()
    adapter = MailAdapter(
        _no_http, imap_host="127.0.0.1", imap_user="u", imap_password="pw-0001", imap_port=port
    )

    result = await adapter.check()

    assert result.status == "unreachable"
    assert f"127.0.0.1:{port} refused the connection" in result.detail
    assert_no_secret(result, "pw-0001")


async def test_imap_server_that_never_answers() -> None:
    with black_hole() as address:
        host, port = address.split(":")
        adapter = ImapAdapter(host, "u", "pw-0001", port=int(port), tls="none", timeout=0.3)

        result = await adapter.check()

    assert result.status == "unreachable"
    assert "did not answer within 0.3 s" in result.detail
    assert_no_secret(result, "pw-0001")


async def test_imap_configured_in_part() -> None:
    result = await MailAdapter(_no_http, imap_host="imap.example.com").check()

    assert result.status == "unreachable"
    assert "IMAP_USER and IMAP_PASSWORD are not set" in result.detail


# --- Neither, and both ---------------------------------------------------------------------


async def test_unconfigured_names_the_variables() -> None:
    adapter = MailAdapter(_no_http, gmail_client_id="", imap_host="")

    result = await adapter.check()

    assert result.status == "unconfigured"
    for variable in ("GMAIL_CLIENT_ID", "GMAIL_REFRESH_TOKEN", "IMAP_HOST", "IMAP_PASSWORD"):
        assert variable in result.detail


async def test_both_configured_and_ok(
    http: httpx.AsyncClient, token_endpoint: FakeGoogleTokenEndpoint, dovecot: ImapServer
) -> None:
    adapter = MailAdapter(lambda: http, **gmail_settings(token_endpoint), **imap_settings(dovecot))

    result = await adapter.check()

    assert result.status == "ok", result.detail
    assert result.detail.startswith("Gmail: Gmail OAuth token refreshed")
    assert f"; IMAP: IMAP login as {dovecot.user}" in result.detail
    secrets = (token_endpoint.client_secret, token_endpoint.refresh_token, dovecot.password)
    assert_no_secret(result, *secrets, *token_endpoint.issued)
    assert not any(secret in repr(adapter) for secret in secrets)


async def test_both_configured_one_failing_is_unreachable(
    http: httpx.AsyncClient, token_endpoint: FakeGoogleTokenEndpoint, dovecot: ImapServer
) -> None:
    token_endpoint.revoked = True
    adapter = MailAdapter(lambda: http, **gmail_settings(token_endpoint), **imap_settings(dovecot))

    result = await adapter.check()

    assert result.status == "unreachable"
    assert "Gmail: Google refused the refresh token" in result.detail
    assert "IMAP: IMAP login as" in result.detail
