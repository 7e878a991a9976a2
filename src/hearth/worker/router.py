"""The task API and the Tasks page: start the ``ping`` task, read any task's state; queues,
workers, recent runs and failures (a page for the operator's browser, JSON for scripts);
Retry of a failed task."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from hearth.access.caller import identify
from hearth.access.dependencies import require
from hearth.audit.dependencies import AuditDep
from hearth.audit.service import client_of
from hearth.db.dependencies import UnitOfWorkDep
from hearth.web.forms import submitted_values
from hearth.web.openapi import error_responses, form_or_json
from hearth.web.templating import flash, render, wants_html
from hearth.worker import service
from hearth.worker.dependencies import BrokerRedisDep, HeartbeatWindowDep, QueueDep
from hearth.worker.queue import QueueUnavailable
from hearth.worker.schemas import TaskAccepted, TaskRetried, TasksOverview, TaskState

router = APIRouter(prefix="/tasks", tags=["tasks"])

MAX_PING_DELAY_SECONDS = 60


@router.get(
    "",
    response_model=TasksOverview,
    dependencies=[require("read", login_page=True)],
    responses=error_responses(401, 403, 503),
)
async def tasks_page(
    request: Request, unit: UnitOfWorkDep, redis: BrokerRedisDep, window: HeartbeatWindowDep
) -> Response:
    """Queue depths, every worker (host, concurrency, last heartbeat, what it runs), the
    latest task runs and failures with their reason. 503 while the database is down."""
    connection = await unit.session.connection()
    overview = await service.overview(connection, redis, window)
    if wants_html(request):
        context = {"overview": overview, "now": datetime.now(UTC)}
        return await render(request, "tasks.html", context)
    return JSONResponse(overview.model_dump(mode="json"))


@router.post(
    "/ping",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskAccepted,
    dependencies=[require("write")],
    responses=error_responses(401, 403, 503),
)
async def start_ping(queue: QueueDep, delay_seconds: float = 0.0) -> TaskAccepted:
    """Queue the ``ping`` task; 503 with the reason when the queue is down (then nothing
    was queued)."""
    if not 0 <= delay_seconds <= MAX_PING_DELAY_SECONDS:
        raise HTTPException(422, f"delay_seconds must be between 0 and {MAX_PING_DELAY_SECONDS}")
    return TaskAccepted(id=await service.start_ping(queue, delay_seconds))


@router.get(
    "/{task_id}",
    response_model=TaskState,
    dependencies=[require("read")],
    responses=error_responses(401, 403, 503),
)
async def task_state(task_id: str, queue: QueueDep) -> TaskState:
    """A task's state (PENDING, STARTED, SUCCESS, FAILURE, RETRY) and its result."""
    _check_id(task_id)
    return await service.state(queue, task_id)


@router.post(
    "/{task_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskRetried,
    dependencies=[require("write")],
    openapi_extra=form_or_json(
        {"csrf_token": "The operator session's CSRF token (not needed with an API token)."},
        required=False,
    ),
    responses=error_responses(401, 403, 404, 409, 415, 503),
)
async def retry_task(
    task_id: str, request: Request, unit: UnitOfWorkDep, queue: QueueDep, audit: AuditDep
) -> Response:
    """Send a failed task again, by name with its stored arguments, as a new task (its id
    in the answer); the failed one is marked retried. 404 for a task with no recorded run,
    409 for one that did not fail or was retried already, 503 when the broker is down."""
    _check_id(task_id)
    await submitted_values(request)  # a form or JSON, else 415 (require() checked the CSRF token)
    caller = await identify(request)
    connection = await unit.session.connection()
    try:
        retried = await service.retry(connection, queue, task_id)
    except (service.TaskNotFound, service.TaskNotRetryable, QueueUnavailable) as exc:
        if not wants_html(request):
            raise
        # Nothing was changed: the page says why, beside the list it came from.
        flash(request, "error", exc.message)
        return RedirectResponse("/tasks", status_code=303)
    await audit.record(
        "task_retried",
        actor=caller.actor,
        client=client_of(request),
        within=unit,
        task_id=task_id,
        new_task_id=retried.id,
    )
    if wants_html(request):
        flash(request, "success", f"Sent again as a new task, {retried.id}.")
        return RedirectResponse("/tasks", status_code=303)
    return JSONResponse(retried.model_dump(mode="json"), status_code=202)


def _check_id(task_id: str) -> None:
    try:
        uuid.UUID(task_id)
    except ValueError:
        raise HTTPException(422, f"{task_id!r} is not a task id (a UUID)") from None
