"""The Tasks page in a real Chromium against a real `hearth serve` and `hearth worker` on
Redis: reached through the login, a failure shown with its reason and a task running under
its worker, Retry pressed by keyboard alone, and axe-core (WCAG 2.1 A/AA) on each state at
1280 and 390 px."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis
from playwright.async_api import Page, expect

from hearth.config.settings import Settings
from hearth.worker.app import create_celery
from hearth.worker.queue import PendingTask, TaskQueue
from tests.support.axe import assert_accessible
from tests.support.process import TEST_SECRET_KEY, clean_environment, hearth_server
from tests.support.services import REDIS_URL, free_port
from tests.support.worker import hearth_worker

pytestmark = [pytest.mark.redis, pytest.mark.worker]

PASSWORD = "tasks-browser-operator-password"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_SECONDS = 60.0
MAX_TABS = 80


async def reload_until(page: Page, what: str, shown: Callable[[], Awaitable[bool]]) -> None:
    """Reload the page (it does not refresh itself) until ``shown`` holds."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if await shown():
            return
        await page.wait_for_timeout(300)
        await page.reload()
    raise AssertionError(f"the Tasks page never showed {what}:\n{await page.content()}")


async def accessible_at_both_widths(page: Page, state: str) -> None:
    await assert_accessible(page, f"{state} (1280 px)")
    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await assert_accessible(page, f"{state} (390 px)")
    await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]


async def tab_to(page: Page, name: str) -> None:
    """Press Tab until the focused element is the button named ``name``."""
    await page.locator("body").focus()
    for _ in range(MAX_TABS):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "() => document.activeElement && document.activeElement.getAttribute('aria-label')"
        )
        if focused == name:
            return
    raise AssertionError(f"{MAX_TABS} presses of Tab never reached the button {name!r}")


async def test_the_tasks_page_by_keyboard_at_both_widths(
    page: Page, tmp_path: Path, fresh_database: str, queue_redis: str
) -> None:
    env = clean_environment(
        DATABASE_URL=fresh_database,
        REDIS_URL=queue_redis,
        ADMIN_PASSWORD=PASSWORD,
        TEST_EFFECT_REDIS_URL=REDIS_URL,
        WORKER_HEARTBEAT_SECONDS="1",
    )
    settings = Settings(_env_file=None, secret_key=TEST_SECRET_KEY, redis_url=queue_redis)
    queue = TaskQueue(lambda: create_celery(settings, fresh_database, waits=False))
    key = f"tasks-browser-{uuid.uuid4().hex}"
    effects = redis.Redis.from_url(REDIS_URL)
    try:
        with hearth_server(env, tmp_path, free_port()) as server:
            server.wait_until("/readyz", 200)
            with hearth_worker(env, tmp_path, concurrency=2):
                # The page asks for the operator first, then comes back to /tasks.
                await page.goto(f"{server.url}/tasks")
                await expect(page).to_have_url(re.compile(r"/login\?next=/tasks$"))
                await page.get_by_label("Operator password").fill(PASSWORD)
                await page.get_by_role("button", name="Log in").click()
                await expect(page).to_have_url(f"{server.url}/tasks")
                await expect(page.get_by_role("link", name="Tasks")).to_have_attribute(
                    "aria-current", "page"
                )

                failing = PendingTask("tests.fail")
                long_task = PendingTask("tests.hold", (key, 60.0))
                await queue.send(long_task)
                await queue.send(failing)
                failure = page.locator(f"#failure-{failing.id}")
                running = page.locator(".tasks-running", has_text=long_task.id)

                async def both_shown() -> bool:
                    return await failure.count() == 1 and await running.count() == 1

                await reload_until(page, "the failure and the running task", both_shown)
                await expect(failure).to_contain_text("RuntimeError: this task always fails")
                await expect(running).to_contain_text("tests.hold")
                await expect(page.locator("#queue-celery td")).to_have_text("0")
                await accessible_at_both_widths(page, "/tasks with a failure and a running task")

                # Retry by keyboard alone: Tab to the button, Enter.
                await tab_to(page, f"Retry tests.fail {failing.id}")
                await page.keyboard.press("Enter")
                await expect(page.locator(".flash.success")).to_contain_text(
                    "Sent again as a new task"
                )
                await expect(failure).to_contain_text("retried as")
                await expect(failure.get_by_role("button")).to_have_count(0)
                await accessible_at_both_widths(page, "/tasks after a Retry")

                # The new task ran, and failed again as this task always does.
                new_id = (await failure.locator(".tasks-id").last.inner_text()).strip()
                assert new_id != failing.id
                rerun = page.locator(f"#failure-{new_id}")

                async def rerun_shown() -> bool:
                    return await rerun.count() == 1

                await reload_until(page, "the retried task's failure", rerun_shown)
                await expect(rerun.get_by_role("button", name="Retry")).to_have_count(1)
                effects.set(f"{key}:release", 1)
    finally:
        queue.close()
        effects.delete(*(f"{key}:{part}" for part in ("runs", "done", "effects", "release")))
        effects.close()
