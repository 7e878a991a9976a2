"""Behind a real nginx, the login throttle keys on the client, not on the proxy: a real
`hearth serve` process, FORWARDED_ALLOW_IPS naming nginx's address, clients on different
loopback addresses. X-Forwarded-For from anyone but the proxy is ignored."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from pydantic import ValidationError

from hearth.config.settings import Settings
from tests.support.nginx import Nginx, StartNginx
from tests.support.process import TEST_SECRET_KEY, HearthServer, clean_environment, hearth_server
from tests.support.services import free_port

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Stack:
    hearth: HearthServer
    nginx: Nginx


@pytest.fixture(scope="module")
def behind_nginx(
    database_url: str, start_nginx: StartNginx, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """`hearth serve` on the suite's database, and nginx in front of it. One for the module:
    each test uses client addresses of its own (the throttle's counts live in the process)."""
    home = tmp_path_factory.mktemp("proxied")
    env = clean_environment(
        DATABASE_URL=database_url,
        ADMIN_PASSWORD=PASSWORD,
        FORWARDED_ALLOW_IPS="127.0.0.1",  # where nginx connects from
        HEALTH_CACHE_SECONDS="0",
    )
    port = free_port()
    with hearth_server(env, home, port) as hearth:
        hearth.wait_until("/readyz")
        with start_nginx(port, home / "nginx") as nginx:
            yield Stack(hearth, nginx)


def _client(base_url: str, address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127.x address is this host)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base_url, transport=transport, timeout=10)


def _log_in(client: httpx.Client, password: str, **headers: str) -> int:
    token = client.get("/login").json()["csrf_token"]
    response = client.post(
        "/login", json={"password": password}, headers={"X-CSRF-Token": token, **headers}
    )
    return response.status_code


def test_the_throttle_keys_on_the_client_behind_the_proxy(behind_nginx: Stack) -> None:
    url = behind_nginx.nginx.url
    with _client(url, "127.0.0.2") as guesser, _client(url, "127.0.0.3") as operator:
        guesses = [_log_in(guesser, f"guess-{n}") for n in range(5)]
        blocked = _log_in(guesser, PASSWORD)
        # A forged header through the proxy does not help: nginx appends the real address.
        disguised = _log_in(guesser, PASSWORD, **{"X-Forwarded-For": "198.51.100.7"})
        logged_in = _log_in(operator, PASSWORD)
        page = operator.get("/config", headers={"Accept": "application/json"})

    assert guesses == [401] * 5
    assert blocked == 429
    assert disguised == 429
    assert logged_in == 200
    assert page.status_code == 200
    failed = {line["client"] for line in behind_nginx.hearth.events("login_failed")}
    assert "127.0.0.2" in failed
    assert "127.0.0.1" not in failed  # never the proxy
    assert "198.51.100.7" not in failed
    succeeded = {line["client"] for line in behind_nginx.hearth.events("login_succeeded")}
    assert "127.0.0.3" in succeeded


def test_a_forged_forwarded_header_sent_directly_is_ignored(behind_nginx: Stack) -> None:
    # Straight to Hearth, not through the trusted proxy: each guess claims another address.
    with _client(behind_nginx.hearth.url, "127.0.0.4") as forger:
        guesses = [
            _log_in(forger, f"guess-{n}", **{"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(6)
        ]
    assert guesses == [401] * 5 + [429]
    failed = {line["client"] for line in behind_nginx.hearth.events("login_failed")}
    assert "127.0.0.4" in failed
    assert not any(client.startswith("203.0.113.") for client in failed)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("127.0.0.1,::1", "127.0.0.1,::1"),
        (" 10.0.0.1/8 , 192.168.1.10", "10.0.0.0/8,192.168.1.10"),  # as Uvicorn reads it
        ("*", "*"),
        ("", ""),
    ],
)
def test_forwarded_allow_ips_takes_addresses_and_networks(given: str, kept: str) -> None:
    settings = Settings(_env_file=None, secret_key=TEST_SECRET_KEY, forwarded_allow_ips=given)
    assert settings.forwarded_allow_ips == kept


def test_forwarded_allow_ips_refuses_what_is_no_address() -> None:
    with pytest.raises(ValidationError, match=r"'proxy\.lan' is not an IP address or network"):
        Settings(_env_file=None, secret_key=TEST_SECRET_KEY, forwarded_allow_ips="proxy.lan")
