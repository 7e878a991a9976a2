"""Each values file, variant and the kustomize base rendered once for the session."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.kubernetes import (
    DEFAULT,
    KUSTOMIZE,
    VALUES,
    VARIANTS,
    Rendered,
    kustomize_build,
    render,
)


@pytest.fixture(scope="session")
def kustomized() -> list[dict[str, Any]]:
    return kustomize_build(KUSTOMIZE)


@pytest.fixture(scope="session")
def default() -> Rendered:
    return render(DEFAULT)


@pytest.fixture(scope="session")
def production() -> Rendered:
    return render(VALUES["production"])


@pytest.fixture(scope="session", params=[*VALUES, "kustomize"])
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """The objects of each Helm values file, and of the kustomize base."""
    if request.param == "kustomize":
        objects: list[dict[str, Any]] = request.getfixturevalue("kustomized")
        return objects
    return render(VALUES[request.param]).objects


@pytest.fixture(scope="session")
def variants() -> dict[str, Rendered]:
    return {name: render(values) for name, values in VARIANTS.items()}
