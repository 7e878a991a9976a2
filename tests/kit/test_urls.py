"""How every URL is shown (``mask_url``, ``mask_urls``) and compared (``origin``)."""

from __future__ import annotations

import pytest

from hearth.kit.checks import CheckResult
from hearth.kit.urls import mask_url, mask_urls, origin


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("http://127.0.0.1:9/?token=S3CRET", "http://127.0.0.1:9/?token=***"),
        ("https://h/v1?a=1&key=S3CRET&empty=", "https://h/v1?a=***&key=***&empty="),
        ("https://h/v1?sk-S3CRET", "https://h/v1?***"),
        ("http://u:S3CRET@h:1/x", "http://u:***@h:1/x"),
        ("https://S3CRET@github.com/o/r", "https://***@github.com/o/r"),
        ("redis://:S3CRET@cache:6379/0", "redis://:***@cache:6379/0"),
        ("http://u:p?#S3CRET@h/db?sslmode=require", "http://u:***@h/db?sslmode=***"),
        ("http://h/#access_token=S3CRET", "http://h/#***"),
        (
            "https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21&sig=S3CRET",
            "https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21&sig=***",
        ),
    ],
)
def test_a_url_is_shown_without_password_query_values_or_fragment(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert mask_url(shown) == shown  # masking twice changes nothing


def test_urls_inside_text_are_masked() -> None:
    text = (
        "cannot connect to http://127.0.0.1:9/?token=S3CRET: refused; "
        "tried 'https://u:S3CRET@h/x?api-version=1' and <http://h/?k=S3CRET>"
    )
    masked = mask_urls(text)
    assert "S3CRET" not in masked
    assert masked.startswith("cannot connect to http://127.0.0.1:9/?token=***")
    assert "'https://u:***@h/x?api-version=1'" in masked
    assert "<http://h/?k=***>" in masked


def test_a_check_detail_never_shows_a_url_unmasked() -> None:
    """Health, the banner, the fragment, MCP and the connection test all show this detail."""
    result = CheckResult(status="unreachable", detail="http://h:1/?token=S3CRET did not answer")
    assert result.detail == "http://h:1/?token=*** did not answer"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://API.OpenAI.com/v1/models?x=1", "https://api.openai.com:443"),
        ("http://ollama.:11434/", "http://ollama:11434"),
        ("http://[::1]/", "http://[::1]:80"),
        ("http://user:pw@h:8080", "http://h:8080"),
    ],
)
def test_origins_compare_scheme_host_and_port(url: str, expected: str) -> None:
    assert origin(url) == expected


def test_an_origin_needs_a_host() -> None:
    with pytest.raises(ValueError, match="names no host"):
        origin("not a url")
