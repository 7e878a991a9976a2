"""What every HTTP LLM adapter's health check does: ask the server for its models."""

from __future__ import annotations

import time

import httpx

from hearth.health.schemas import CheckResult

CHECK_TIMEOUT_SECONDS = 1.5


async def check_model_listing(
    client: httpx.AsyncClient,
    base_url: str,
    path: str,
    *,
    location: str,
    server: str,
    models_field: str,
    headers: dict[str, str] | None = None,
) -> CheckResult:
    """GET ``base_url + path`` and count the ``models_field`` list in its JSON: ``ok`` with
    the count, or ``unreachable`` saying why (no answer, refused credentials, an HTTP error,
    not the expected JSON). ``location`` names the server without credentials."""
    started = time.perf_counter()
    try:
        response = await client.get(base_url + path, headers=headers, timeout=CHECK_TIMEOUT_SECONDS)
    except httpx.TimeoutException:
        detail = f"{location} did not answer within {CHECK_TIMEOUT_SECONDS:g} s"
        return CheckResult.timed("unreachable", detail, started)
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        return CheckResult.timed("unreachable", f"{location}: {reason}", started)
    status = response.status_code
    if status in (401, 403):
        detail = f"{location} refused the credentials (HTTP {status}); check LLM_API_KEY"
        return CheckResult.timed("unreachable", detail, started)
    if status != 200:
        return CheckResult.timed("unreachable", f"{location}{path} answered HTTP {status}", started)
    try:
        models = response.json().get(models_field, [])
    except (ValueError, AttributeError):
        detail = f"{location}{path} did not answer {server}'s JSON; is it {server}?"
        return CheckResult.timed("unreachable", detail, started)
    count = len(models) if isinstance(models, list) else 0
    noun = "model" if count == 1 else "models"
    return CheckResult.timed("ok", f"{server} at {location}, {count} {noun}", started)
