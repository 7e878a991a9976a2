"""What the MCP tools answer: JSON objects with a schema MCP clients can read."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from hearth.config.service import EffectiveSetting, Source


class RuntimeSetting(BaseModel):
    """One runtime setting in force and where its value comes from."""

    value: str
    source: Source = Field(description="environment (locked), database or default")
    variable: str = Field(description="The environment variable that overrides it")
    default: str
    description: str

    @classmethod
    def of(cls, setting: EffectiveSetting) -> RuntimeSetting:
        """The view of ``setting``; runtime settings hold no secret (see the allowlist)."""
        key = setting.key
        return cls(
            value=setting.value,
            source=setting.source,
            variable=setting.set_by or key.variable,
            default=key.default,
            description=key.description,
        )


class RuntimeSettings(BaseModel):
    """``list_settings``: every runtime setting by name."""

    settings: dict[str, RuntimeSetting]


class PingResult(BaseModel):
    """``run_ping``: the task's id and, if it finished within the wait, its result."""

    id: str = Field(description="The Celery task id; GET /tasks/{id} reads its state later")
    state: str = Field(description="PENDING, STARTED, SUCCESS, FAILURE or RETRY")
    result: Any = Field(default=None, description='On SUCCESS: {"pong": true, "worker": …}')
    error: str | None = None
