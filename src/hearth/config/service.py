"""Runtime values with visible precedence: environment > database > default.

Two kinds of setting, named apart everywhere: ``Settings`` are the infrastructure settings,
read once from the environment at start-up (``settings.py``); *runtime values* are the
allowlisted keys an operator edits on the config page, kept in the ``settings`` table.

A key set in the environment (or .env, or a secret file) wins and is locked on the config
page, so a value saved earlier in the database can never silently override what the
operator wrote in their deployment files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hearth.config import repository
from hearth.config.allowlist import ALLOWLIST, RuntimeKey, validate_values
from hearth.config.recent import RecentValues
from hearth.config.settings import Settings
from hearth.errors import HearthError
from hearth.kit.bound import KeyUse
from hearth.kit.urls import mask_url

Source = Literal["environment", "database", "default"]


@dataclass(frozen=True)
class EffectiveSetting:
    """A runtime key's value in force and where it comes from."""

    key: RuntimeKey
    value: str
    source: Source
    # For a value from the environment: the variable that set it (``OLLAMA_BASE_URL`` rather
    # than ``LLM_ENDPOINT`` when that is the one in the environment).
    set_by: str = ""

    @property
    def locked(self) -> bool:
        """Set in the environment: read-only on the page."""
        return self.source == "environment"

    @property
    def variable(self) -> str:
        """The environment variable that sets (or would override) this key."""
        return self.set_by or self.key.variable

    @property
    def shown(self) -> str:
        """The value as pages and API answers show it: a URL masked (``mask_url``)."""
        return mask_url(self.value) if self.key.kind == "url" else self.value


# Every allowlisted key, by name, with its value in force.
RuntimeValues = dict[str, EffectiveSetting]


class InvalidSettings(HearthError):
    """Refused values, by key, each with the reason. Nothing was saved."""

    status_code = 422

    def __init__(self, errors: dict[str, str]) -> None:
        described = "; ".join(f"{key}: {reason}" for key, reason in errors.items())
        super().__init__(f"Invalid settings: {described}", field_errors=errors)


class ConfigService:
    """Reads and writes runtime values. Writes ``flush()``; the caller's edge commits.

    ``recent_seconds``: how long what ``recent_values`` read is used again (the server's
    ``RUNTIME_VALUES_CACHE_SECONDS``; 0, the commands and the worker, which read each time).
    """

    def __init__(self, settings: Settings, *, recent_seconds: float = 0.0) -> None:
        self.settings = settings
        self._recent = RecentValues(recent_seconds)

    def environment_value(self, key: RuntimeKey) -> str | None:
        """The value the environment sets for ``key``, if any."""
        value = getattr(self.settings, key.name, None)
        return value if isinstance(value, str) else None

    def llm_api_key_use(self, values: RuntimeValues) -> KeyUse | None:
        """Whether ``LLM_API_KEY`` goes to the LLM endpoint in force, and why: shown beside
        the endpoint. None when there is no key or no endpoint."""
        return self.key_use(values["llm_provider"].value, values["llm_endpoint"].value)

    def key_use(self, provider: str, endpoint: str) -> KeyUse | None:
        """Whether ``LLM_API_KEY`` would go to ``endpoint`` spoken to as ``provider``."""
        use = self.settings.bound_llm_api_key().use_for(endpoint) if endpoint else None
        if use is not None and use.sent and provider != "openai":
            return KeyUse(sent=False, reason="LLM_API_KEY is not sent: Ollama takes no key")
        return use

    async def values_in_force(self, session: AsyncSession) -> RuntimeValues:
        """Every allowlisted key with its value in force and its source."""
        stored = await repository.get_all(session)
        return {name: self._effective(key, stored) for name, key in ALLOWLIST.items()}

    async def recent_values(self, session: AsyncSession) -> RuntimeValues:
        """The values in force as this process read them less than ``recent_seconds`` ago,
        else as ``session`` reads them now: what requests act on. The config page and a
        save read ``values_in_force``, the database's."""
        if (kept := self._recent.get()) is not None:
            return dict(kept)
        generation = self._recent.generation
        values = await self.values_in_force(session)
        self._recent.put(values, generation)
        return dict(values)

    async def forget_recent(self) -> None:
        """Read the values from the database again from now on: a save here committed."""
        self._recent.forget()

    def values_without_database(self) -> RuntimeValues:
        """The values in force when the database cannot be read: environment, else default."""
        return {name: self._effective(key, {}) for name, key in ALLOWLIST.items()}

    async def read_values(self, sessions: async_sessionmaker[AsyncSession] | None) -> RuntimeValues:
        """The recent values (``recent_values``), read in a session of their own if need
        be (a session connects only when it queries); those of the environment and the
        defaults while the database is down (pages and checks still work then)."""
        if sessions is None:
            return self.values_without_database()
        try:
            async with sessions() as session:
                return await self.recent_values(session)
        except (SQLAlchemyError, OSError):
            return self.values_without_database()

    def _effective(self, key: RuntimeKey, stored: Mapping[str, str]) -> EffectiveSetting:
        if (from_environment := self.environment_value(key)) is not None:
            return EffectiveSetting(key, from_environment, "environment", set_by(key))
        if key.name in stored:
            return EffectiveSetting(key, stored[key.name], "database")
        return EffectiveSetting(key, key.default, "default")

    async def save(
        self,
        session: AsyncSession,
        submitted: Mapping[str, str],
        *,
        seen: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Validate every submitted value, then store the changed ones; all or nothing.

        ``seen`` holds the values the operator's form showed. A key whose submitted value
        equals what was seen was not edited and is left alone, so two operators saving
        different keys from two tabs do not undo each other. Returns the stored changes.
        """
        changes = changed_values(await self.values_in_force(session), submitted, seen)
        for name, value in changes.items():
            await repository.upsert(session, name, value)
        await session.flush()
        return changes

    @staticmethod
    def proposed(
        current: RuntimeValues,
        submitted: Mapping[str, str],
        *,
        seen: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Every value as it would be in force if ``submitted`` were saved over ``current``:
        validated as ``save`` validates (``InvalidSettings``), and stored nowhere. For
        trying a connection with the values typed in the form."""
        changes = changed_values(current, submitted, seen)
        return {name: changes.get(name, item.value) for name, item in current.items()}


def changed_values(
    current: RuntimeValues, submitted: Mapping[str, str], seen: Mapping[str, str] | None
) -> dict[str, str]:
    """The submitted values that differ from what the operator saw (else from the values
    in force), validated; ``InvalidSettings`` naming each refused key."""
    cleaned, errors = validate_values(submitted)
    changes: dict[str, str] = {}
    for name, value in cleaned.items():
        if value == (seen[name] if seen and name in seen else current[name].value):
            continue
        if current[name].locked:
            errors[name] = (
                f"is set by {current[name].set_by} in the environment; change it there "
                "(the environment always wins)"
            )
            continue
        changes[name] = value
    if errors:
        raise InvalidSettings(errors)
    return changes


def set_by(key: RuntimeKey) -> str:
    """Which of ``key``'s variables the process environment sets; all of their names when
    none does (the value then came from .env or a secret file, which do not say)."""
    present = [name for name in key.variables if os.environ.get(name)]
    return present[0] if present else " or ".join(key.variables)
