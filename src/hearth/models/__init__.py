"""Every ORM model, imported here so Alembic sees the whole schema."""

from hearth.models.api_token import ApiToken
from hearth.models.audit_event import AuditEvent
from hearth.models.base import Base
from hearth.models.document import Document
from hearth.models.health_event import HealthEvent
from hearth.models.operator_session import OperatorSession
from hearth.models.setting import Setting
from hearth.models.task_message import TaskMessage
from hearth.models.task_run import TaskRun
from hearth.models.worker_heartbeat import WorkerHeartbeat

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Document",
    "HealthEvent",
    "OperatorSession",
    "Setting",
    "TaskMessage",
    "TaskRun",
    "WorkerHeartbeat",
]
