"""Health checks and their aggregation, against real Redis and PostgreSQL and a fake Ollama
that speaks its HTTP API."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from redis.asyncio import Redis

from hearth.health.service import HealthService
from hearth.kit.checks import CheckResult
from hearth.llm.ollama import OllamaAdapter
from hearth.redis.adapter import RedisAdapter, create_client
from tests.support.fake_llm import black_hole, fake_ollama
from tests.support.services import REDIS_URL, free_port


def _service(**kwargs: float) -> HealthService:
    return HealthService(
        version="test", budget=kwargs.get("budget", 2.0), cache_seconds=kwargs.get("cache", 0)
    )


async def _constant(status: str) -> CheckResult:
    return CheckResult(status=status)


@pytest.mark.parametrize(
    ("db", "redis", "llm", "overall"),
    [
        ("ok", "ok", "ok", "ok"),
        ("ok", "unconfigured", "unconfigured", "ok"),
        ("ok", "unreachable", "ok", "degraded"),
        ("ok", "ok", "unreachable", "degraded"),
        ("unreachable", "ok", "ok", "down"),
        ("unreachable", "unreachable", "unreachable", "down"),
    ],
)
async def test_overall_status_follows_the_contract(
    db: str, redis: str, llm: str, overall: str
) -> None:
    service = _service()
    service.register("db", lambda: _constant(db), critical=True, timeout=1)
    service.register("redis", lambda: _constant(redis), critical=False, timeout=1)
    service.register("llm", lambda: _constant(llm), critical=False, timeout=1)
    report = await service.report()
    assert report.status == overall
    assert {name: r.status for name, r in report.checks.items()} == {
        "db": db,
        "redis": redis,
        "llm": llm,
    }


async def test_checks_run_concurrently_each_under_its_own_timeout() -> None:
    service = _service(budget=2.0)

    async def slow() -> CheckResult:
        await asyncio.sleep(30)
        return CheckResult(status="ok")

    service.register("db", lambda: _constant("ok"), critical=True, timeout=1)
    service.register("llm", slow, critical=False, timeout=0.3)
    service.register("mail", slow, critical=False, timeout=0.3)
    report = await service.report()
    assert report.checks["llm"].status == "unreachable"
    assert report.checks["llm"].detail == "no answer within 0.3 s"
    assert report.checks["mail"].status == "unreachable"
    assert report.status == "degraded"


async def test_the_budget_bounds_a_request_even_if_a_check_ignores_cancellation() -> None:
    service = _service(budget=0.2)

    async def stubborn() -> CheckResult:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)  # a badly behaved client library
        return CheckResult(status="ok")

    service.register("llm", stubborn, critical=False, timeout=5)
    results = await service.run()
    assert results["llm"].status == "unreachable"
    assert "0.2 s" in results["llm"].detail


async def test_close_cancels_checks_still_running() -> None:
    service = _service(budget=5)
    cancelled = asyncio.Event()

    async def hanging() -> CheckResult:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return CheckResult(status="ok")

    service.register("llm", hanging, critical=False, timeout=5)
    request = asyncio.create_task(service.run())
    await asyncio.sleep(0.1)  # the check is now running
    await service.close()
    assert cancelled.is_set()
    assert (await request)["llm"].detail == "check cancelled: shutting down"


async def test_a_check_that_raises_reports_unreachable() -> None:
    service = _service()

    async def broken() -> CheckResult:
        raise RuntimeError("exploded while talking to redis://:leaky@cache:6379")

    service.register("redis", broken, critical=False, timeout=1)
    result = (await service.run())["redis"]
    assert result.status == "unreachable"
    assert "RuntimeError" in result.detail
    assert "leaky" not in result.detail


async def test_concurrent_callers_share_one_run_and_results_are_cached() -> None:
    calls = 0

    async def counted() -> CheckResult:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return CheckResult(status="ok")

    service = _service(cache=60)
    service.register("db", counted, critical=True, timeout=1)
    reports = await asyncio.gather(*(service.report() for _ in range(50)))
    assert calls == 1
    assert all(r.status == "ok" for r in reports)
    await service.report()
    assert calls == 1  # still cached

    uncached = _service(cache=0)
    uncached.register("db", counted, critical=True, timeout=1)
    await uncached.report()
    await uncached.report()
    assert calls == 3


@pytest.mark.redis
async def test_redis_check_against_real_redis() -> None:
    client = create_client(REDIS_URL)
    try:
        result = await RedisAdapter(client, REDIS_URL).check()
    finally:
        await client.aclose()
    assert result.status == "ok"
    assert result.latency_ms > 0


async def test_redis_check_unreachable_and_unconfigured() -> None:
    url = f"redis://:redis-pass@127.0.0.1:{free_port()}/0"
    client = Redis.from_url(url, socket_connect_timeout=1)
    try:
        down = await RedisAdapter(client, url).check()
    finally:
        await client.aclose()
    assert down.status == "unreachable"
    assert "redis-pass" not in down.detail
    assert (await RedisAdapter(None, None).check()).status == "unconfigured"


async def test_ollama_check_speaks_the_tags_endpoint() -> None:
    with fake_ollama() as server:
        async with httpx.AsyncClient() as client:
            adapter = OllamaAdapter(server.url, client)
            ok = await adapter.check()
            server.mode = "error"
            failing = await adapter.check()
            server.mode = "garbage"
            garbage = await adapter.check()
    assert ok.status == "ok"
    assert ok.detail.endswith("1 model")
    assert failing.status == "unreachable"
    assert "HTTP 500" in failing.detail
    assert garbage.status == "unreachable"
    assert "is it Ollama?" in garbage.detail


async def test_openai_compatible_check_sends_the_api_key() -> None:
    from hearth.llm.openai import OpenAICompatibleAdapter

    with fake_ollama() as server:
        server.api_key = "sk-test-key"
        async with httpx.AsyncClient() as client:
            ok = await OpenAICompatibleAdapter(server.url, client, "sk-test-key").check()
            with_v1 = await OpenAICompatibleAdapter(
                f"{server.url}/v1/", client, "sk-test-key"
            ).check()
            refused = await OpenAICompatibleAdapter(server.url, client, "sk-wrong").check()
    assert ok.status == "ok"
    assert ok.detail.endswith("1 model")
    assert with_v1.status == "ok"
    assert refused.status == "unreachable"
    assert "HTTP 401" in refused.detail
    assert "LLM_API_KEY" in refused.detail
    assert "sk-wrong" not in refused.detail


async def test_ollama_check_refused_and_silent() -> None:
    async with httpx.AsyncClient() as client:
        refused = await OllamaAdapter(f"http://127.0.0.1:{free_port()}", client).check()
        with black_hole() as address:
            silent = await OllamaAdapter(f"http://user:llm-secret@{address}", client).check()
    assert refused.status == "unreachable"
    assert silent.status == "unreachable"
    assert "did not answer within" in silent.detail
    assert "llm-secret" not in silent.detail


async def test_health_answers_within_the_budget_when_a_host_never_answers() -> None:
    """An endpoint that accepts TCP and never answers cannot hold /health hostage."""
    with black_hole() as address:
        async with httpx.AsyncClient() as client:
            service = _service(budget=0.5)
            service.register(
                "llm", OllamaAdapter(f"http://{address}", client).check, critical=False, timeout=5
            )
            started = time.perf_counter()
            report = await service.report()
            elapsed = time.perf_counter() - started
    assert report.checks["llm"].status == "unreachable"
    assert report.status == "degraded"
    # A bound against hanging, not a speed target: the budget is 0.5 s.
    assert elapsed < 5
