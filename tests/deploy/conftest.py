"""What Hearth's /metrics exports, from a real scrape: the monitoring files' queries
(tests/deploy/test_grafana.py, tests/deploy/prometheus/) may name only those series."""

from __future__ import annotations

import pytest

from tests.support.app import ClientFor
from tests.support.monitoring import exported_names
from tests.support.tokens import bearer, insert_token


@pytest.fixture
async def exported_metrics(client_for: ClientFor, database_url: str) -> dict[str, str]:
    """Each series name the real app's GET /metrics makes queryable, mapped to its family,
    scraped as Prometheus does: in the text format, with a metrics-scope token."""
    token = insert_token(database_url, ("metrics",))
    async with client_for() as client:
        # A request first, so the HTTP families hold samples and not only their types.
        assert (await client.get("/health")).status_code == 200
        scraped = await client.get("/metrics", headers=bearer(token))
    assert scraped.status_code == 200, scraped.text[:500]
    assert scraped.headers["content-type"].startswith("text/plain"), scraped.headers
    names = exported_names(scraped.text)
    assert "hearth_build_info" in names, sorted(names)
    return names
