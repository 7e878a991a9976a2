"""docs/configuration.md is generated from the code; this keeps the two in step."""

from __future__ import annotations

from hearth.config import reference
from hearth.config.allowlist import ALLOWLIST
from hearth.config.settings import Settings, env_names
from tests.support.paths import ROOT

DOC = ROOT / "docs" / "configuration.md"


def test_the_configuration_reference_matches_the_code() -> None:
    assert DOC.read_text() == reference.render(), (
        "docs/configuration.md is out of date: run `make docs` and commit the result"
    )


def test_the_reference_names_every_variable_and_runtime_key() -> None:
    page = reference.render()
    for name, field in Settings.model_fields.items():
        for variable in env_names(name, field):
            assert f"`{variable}`" in page, variable
    for key in ALLOWLIST.values():
        assert f"`{key.name}`" in page
        assert f"`{key.variable}`" in page
