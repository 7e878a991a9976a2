"""Connection tests from the config page: a component checked now, within a test's own time
budget (DESIGN.md: up to 5 s, not a probe's 1.5 s), and the LLM tried with the values typed
in the form before they are saved, offering the server's models as choices."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from hearth.config.allowlist import ALLOWLIST
from hearth.health.service import HealthService
from hearth.kit.checks import CheckResult
from hearth.kit.urls import mask_url
from hearth.web.templating import component_label

# An explicit test may take up to 5 s (DESIGN.md); a probe after a save as long as a
# health check's (1.5 s), so that a save does not stall on a silent server.
TEST_TIMEOUT_SECONDS = 5.0
SAVE_CHECK_SECONDS = 1.5

# The runtime keys a test of the LLM reads from the form; the others are not its business.
LLM_FIELDS = ("llm_provider", "llm_endpoint", "llm_model", "embedding_model")
# Past the adapter's own timeout, a little grace, so that its words explain a timeout.
_GRACE_SECONDS = 0.5


class LLMTrier(Protocol):
    """What tries an LLM server before its settings are saved (``LLMProvider`` is one: the
    LLM package knows the servers, this one the page, and neither imports the other)."""

    async def try_out(
        self, provider: str, endpoint: str, *, within: float
    ) -> tuple[CheckResult, tuple[str, ...]]:
        """The check's result and the models the server lists; never raises."""
        ...


@dataclass(frozen=True)
class ConnectionTest:
    """One test's answer: the check's result, when it ran, and for the LLM the models the
    server lists, notes on the models named in the form, and whether the values tried were
    the saved ones."""

    service: str
    result: CheckResult
    tested_at: datetime
    models: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    unsaved: bool = False

    def as_json(self) -> dict[str, object]:
        """The answer API clients get."""
        answer: dict[str, object] = {
            "service": self.service,
            **self.result.model_dump(),
            "tested_at": self.tested_at.isoformat(),
        }
        if self.service == "llm":
            answer |= {"models": list(self.models), "notes": list(self.notes)}
            answer["unsaved"] = self.unsaved
        return answer


def label(service: str) -> str:
    """The name the pages give a component (buttons are named after it: "Test connection:
    LLM"), the same on every page."""
    return component_label(service)


async def check_component(health: HealthService, service: str) -> ConnectionTest:
    """Check ``service`` now, past the cache, within the test's budget."""
    result = await health.check_now(service, within=TEST_TIMEOUT_SECONDS)
    return ConnectionTest(service, result, datetime.now(UTC))


async def try_llm(
    llm: LLMTrier,
    values: Mapping[str, str],
    *,
    saved: Mapping[str, str],
    within: float = TEST_TIMEOUT_SECONDS,
) -> ConnectionTest:
    """Try the LLM server ``values`` name (provider and endpoint) and look for the models
    they name among those it lists. ``saved``: the values in force, to tell whether these
    were saved; ``within``: the check's timeout. The API key is bound as always: an
    endpoint elsewhere is tried without it."""
    tested_at = datetime.now(UTC)
    tried = llm.try_out(values["llm_provider"], values["llm_endpoint"], within=within)
    try:
        result, models = await asyncio.wait_for(tried, within + _GRACE_SECONDS)
    except TimeoutError:
        result = CheckResult(
            status="unreachable",
            detail=f"no answer within {within:g} s",
            latency_ms=within * 1000,
        )
        models = ()
    unsaved = any(values[name] != saved[name] for name in LLM_FIELDS)
    notes = _model_notes(values, models) if result.status == "ok" else ()
    return ConnectionTest("llm", result, tested_at, models, notes, unsaved)


async def warning_after_save(llm: LLMTrier, values: Mapping[str, str]) -> str | None:
    """A sentence for beside the endpoint when the LLM server just saved does not answer a
    health check's probe; None when it answers or none is set."""
    if not values["llm_endpoint"]:
        return None
    tried = await try_llm(llm, values, saved=values, within=SAVE_CHECK_SECONDS)
    if tried.result.status == "ok":
        return None
    return f"Saved, but {mask_url(values['llm_endpoint'])} does not answer: {tried.result.detail}"


def _model_notes(values: Mapping[str, str], models: tuple[str, ...]) -> tuple[str, ...]:
    """Which of the models named in the form the server does not list. Nothing is said
    when it lists none (Azure deployments name their model in the URL)."""
    if not models or "/openai/deployments/" in values["llm_endpoint"]:
        return ()
    notes = []
    for name in ("llm_model", "embedding_model"):
        wanted = values[name]
        # Ollama lists a model pulled without a tag as ``name:latest``.
        if wanted and wanted not in models and f"{wanted}:latest" not in models:
            notes.append(f"{ALLOWLIST[name].label} {wanted} is not on this server.")
    return tuple(notes)
