"""How a runtime value is shown to API and MCP clients: one shape for both."""

from __future__ import annotations

from pydantic import BaseModel, Field

from hearth.config.service import EffectiveSetting, RuntimeValues, Source


class RuntimeSetting(BaseModel):
    """One runtime value in force and where it comes from."""

    value: str
    source: Source = Field(description="environment (locked), database or default")
    locked: bool = Field(description="Set in the environment, so read-only here")
    variable: str = Field(description="The environment variable that overrides it")
    default: str
    description: str

    @classmethod
    def of(cls, setting: EffectiveSetting) -> RuntimeSetting:
        """The view of ``setting``; runtime values hold no secret (see the allowlist), and
        a URL is masked all the same (one saved before the allowlist refused queries)."""
        return cls(
            value=setting.shown,
            source=setting.source,
            locked=setting.locked,
            variable=setting.variable,
            default=setting.key.default,
            description=setting.key.description,
        )


class RuntimeSettings(BaseModel):
    """Every runtime value by name."""

    settings: dict[str, RuntimeSetting]

    @classmethod
    def of(cls, values: RuntimeValues) -> RuntimeSettings:
        """The view of every value in ``values``."""
        return cls(settings={name: RuntimeSetting.of(value) for name, value in values.items()})
