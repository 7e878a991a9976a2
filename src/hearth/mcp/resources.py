"""What the MCP tools use, kept apart from the server so that wiring it imports no MCP SDK."""

from __future__ import annotations

from dataclasses import dataclass

from hearth.config.service import ConfigService
from hearth.db.unit import Sessions
from hearth.db.vector import VectorSupport
from hearth.health.service import HealthService
from hearth.llm.provider import LLMProvider
from hearth.worker.queue import TaskQueue


@dataclass(frozen=True)
class ToolResources:
    """What the tools use: the serving app's resources, which its lifespan opens after the
    MCP server is built (so the tools look them up when they run)."""

    health: HealthService
    sessions: Sessions | None
    config: ConfigService
    queue: TaskQueue
    llm: LLMProvider
    vector: VectorSupport
    # MCP clients hold a token, so they read the checks' details unless HEALTH_DETAILS=never.
    health_details: bool = True
