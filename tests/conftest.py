"""The suite's hooks: markers derived from the fixtures a test uses, a run that fails at once
when a selected test needs a service this machine lacks, and no test seeing the settings of
the person running it. The fixtures live in tests/support/, registered here as plugins."""

from __future__ import annotations

import pytest

from tests.support.process import _HEARTH_VARIABLES

pytest_plugins = [
    "tests.support.database",  # the suite's PostgreSQL: fresh_database, database_url, db_session
    "tests.support.app",  # the app in-process: make_settings, client_for
    "tests.support.browser",  # a real Chromium: browser, page
    "tests.support.mail",  # Dovecot, and a double of Google's token endpoint
    "tests.support.nginx",  # a real nginx as the reverse proxy: start_nginx
    "tests.support.tokens",  # API tokens on the suite's database: api_token
    "tests.support.queues",  # the suite's Redis database for task queues: queue_redis
    "tests.support.prometheus",  # a real Prometheus and promtool: start_prometheus, promtool
]

# What a fixture needs, as markers: a test using it, directly or through other fixtures, gets
# them. A test module adds its own fixtures' needs with a FIXTURE_NEEDS dict of the same form;
# what a test does without a fixture (start `hearth worker`, reach TEST_REDIS_URL) it marks.
FIXTURE_NEEDS: dict[str, tuple[str, ...]] = {
    "fresh_database": ("postgres",),
    "database_url": ("postgres",),  # and so engine, db_session
    "queue_redis": ("redis",),
    "make_settings": ("postgres", "redis"),  # and so client_for: the app on both
    "browser": ("browser",),  # and so page
    "dovecot": ("mail",),
    "own_dovecot": ("mail",),
    "start_nginx": ("nginx",),
    "start_prometheus": ("prometheus",),
    "promtool": ("prometheus",),
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        needs = {**FIXTURE_NEEDS, **getattr(getattr(item, "module", None), "FIXTURE_NEEDS", {})}
        fixtures = set(getattr(item, "fixturenames", ()))
        have = {mark.name for mark in item.iter_markers()}
        for name in sorted(fixtures & needs.keys()):
            for marker in needs[name]:
                if marker not in have:
                    item.add_marker(marker)
                    have.add(marker)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Only what the selected tests need, and a failure, never a skip: in CI a missing
    # service is a broken runner.
    if session.config.option.collectonly or not session.items:
        return
    # Imported here: it reads the plugins above, which must be registered (and their asserts
    # rewritten) first.
    from tests.support.needs import missing_needs

    markers = {mark.name for item in session.items for mark in item.iter_markers()}
    if problems := missing_needs(markers):
        pytest.exit(
            "The selected tests need what this machine lacks:\n  " + "\n  ".join(problems),
            returncode=1,
        )


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the settings of the person running it."""
    for name in _HEARTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
