"""docker-compose.yml as written, for what `make test-compose` cannot see: the proof runs
locally built stand-ins for the third-party images, so their pins are checked here."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.support.paths import ROOT

# `${POSTGRES_IMAGE:-pgvector/pgvector:0.8.6-pg17@sha256:…}`: overridable, and by default a
# version tag with the digest the update bot keeps in step with it.
PINNED = re.compile(
    r"^\$\{(?P<variable>[A-Z_]+):-(?P<name>[a-z0-9./_-]+):(?P<tag>[\w.-]+)"
    r"@sha256:[0-9a-f]{64}\}$"
)


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return services


def test_third_party_images_are_pinned_by_version_and_digest() -> None:
    refs: dict[str, set[str]] = {}
    for name, service in _services().items():
        image = service["image"]
        if image.startswith("${HEARTH_IMAGE:"):
            continue  # Hearth's own, built from the Dockerfile
        match = PINNED.match(image)
        assert match, f"{name}: {image} is not pinned by tag and digest"
        assert re.search(r"\d", match["tag"]), f"{name}: {match['tag']} is no version"
        refs.setdefault(match["variable"], set()).add(image)
    assert set(refs) == {"POSTGRES_IMAGE", "REDIS_IMAGE", "OLLAMA_IMAGE"}
    # The backup service dumps with the server's own image: one pin for both.
    assert all(len(images) == 1 for images in refs.values()), refs


def test_each_service_gets_only_the_secrets_it_uses() -> None:
    services = _services()
    assert set(services["api"]["secrets"]) == {"secret_key", "admin_password", "database_url"}
    assert set(services["worker"]["secrets"]) == {"secret_key", "database_url"}
    assert "ADMIN_PASSWORD_FILE" not in services["worker"]["environment"]
    assert set(services["backup"]["secrets"]) == {"postgres_password"}


def test_ollama_runs_unprivileged_within_a_limit_its_models_fit() -> None:
    ollama = _services()["ollama"]
    assert ollama["user"].split(":")[0] not in ("0", "root")
    assert ollama["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in ollama["security_opt"]
    limit = ollama["deploy"]["resources"]["limits"]["memory"]
    # llama3.2:1b (1.3 GB) and nomic-embed-text (0.3 GB), which the docs pull, loaded at once.
    assert limit.endswith("G"), limit
    assert float(limit.removesuffix("G")) >= 3, limit
