"""What every HTTP LLM adapter shares: JSON requests whose every failure becomes
``LLMUnavailable`` with a readable reason, the model-listing health check, and the checks
on the shape of an answer."""

from __future__ import annotations

import math
import textwrap
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from hearth.kit.checks import CheckResult
from hearth.kit.text import first_line
from hearth.kit.urls import mask_url
from hearth.llm.adapter import LLMTimeout, LLMUnavailable, Probe

if TYPE_CHECKING:
    import httpx

CHECK_TIMEOUT_SECONDS = 1.5
# A page offers at most this many model names; a server may list thousands (OpenRouter).
MAX_MODELS_LISTED = 500


class LLMServer:
    """An LLM server's HTTP API as seen by one adapter: its name, where it is, and the
    headers and query parameters every request carries (request URLs hold no query: see
    ``split_endpoint``)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        server: str,
        location: str,
        auth_headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.server = server
        self.location = mask_url(location)
        self.auth_headers = auth_headers or {}
        self.params = params or {}

    async def get_json(self, url: str, *, within: float) -> object:
        """The JSON answer to ``GET url``; ``LLMUnavailable`` saying why there is none."""
        return await self._request("GET", url, within=within)

    async def post_json(self, url: str, body: dict[str, Any], *, within: float) -> object:
        """The JSON answer to ``POST url`` with ``body``; ``LLMUnavailable`` saying why not."""
        return await self._request("POST", url, within=within, body=body)

    async def check_models(
        self, url: str, *, models_field: str, name_field: str, within: float
    ) -> Probe:
        """GET ``url`` and read the ``models_field`` list in its JSON, each model named by
        its ``name_field``: ``ok`` with the count and the names, or ``unreachable`` saying
        why. Never raises."""
        started = time.perf_counter()
        try:
            payload = await self.get_json(url, within=within)
        except LLMUnavailable as exc:
            return Probe(CheckResult.timed("unreachable", exc.message, started))
        if not isinstance(payload, dict):
            return Probe(CheckResult.timed("unreachable", self._not_our_json(url), started))
        models = payload.get(models_field, [])
        listed = models if isinstance(models, list) else []
        names = tuple(
            name
            for model in listed
            if isinstance(model, dict) and isinstance(name := model.get(name_field), str)
        )
        noun = "model" if len(listed) == 1 else "models"
        detail = f"{self.server} at {self.location}, {len(listed)} {noun}"
        return Probe(CheckResult.timed("ok", detail, started), names[:MAX_MODELS_LISTED])

    async def _request(
        self, method: str, url: str, *, within: float, body: dict[str, Any] | None = None
    ) -> object:
        # Imported on the first call: a server that never asks an LLM need not load httpx.
        import httpx

        try:
            response = await self.client.request(
                method,
                url,
                json=body,
                headers=self.auth_headers,
                # httpx replaces a URL's query with ``params``, even an empty one.
                params=self.params or None,
                timeout=within,
            )
        except httpx.TimeoutException:
            raise LLMTimeout(f"{self.location} did not answer within {within:g} s") from None
        except httpx.ConnectError as exc:
            raise LLMUnavailable(f"cannot connect to {self.location}: {first_line(exc)}") from None
        except httpx.HTTPError as exc:
            raise LLMUnavailable(f"{self.location}: {first_line(exc)}") from None
        except httpx.InvalidURL as exc:
            raise LLMUnavailable(f"{self.location} is not a usable URL: {exc}") from None
        except UnicodeEncodeError:
            # httpx sends headers as ASCII; the message would quote the key's characters.
            raise LLMUnavailable(
                f"cannot send a request to {self.location}: LLM_API_KEY holds characters "
                "an HTTP header cannot carry"
            ) from None
        status = response.status_code
        if status in (401, 403):
            refused = "the API key" if self.auth_headers else "the credentials"
            raise LLMUnavailable(
                f"{self.location} refused {refused} (HTTP {status}); check LLM_API_KEY"
            )
        if status != HTTPStatus.OK:
            raise LLMUnavailable(f"{shown(url)} answered HTTP {status}{_server_error(response)}")
        try:
            return response.json()
        except ValueError:
            raise LLMUnavailable(self._not_our_json(url)) from None

    def _not_our_json(self, url: str) -> str:
        return f"{shown(url)} did not answer {self.server}'s JSON; is it {self.server}?"


def split_endpoint(endpoint: str) -> tuple[str, dict[str, str]]:
    """``endpoint`` without its query and trailing '/', to which request paths are added,
    and the query's parameters, which every request carries (Azure's ``api-version``)."""
    parts = urlsplit(endpoint.strip())
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return base, dict(parse_qsl(parts.query))


def shown(url: str) -> str:
    """``url`` as messages show it: masked, without its query string."""
    parts = urlsplit(mask_url(url))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def field(payload: object, path: tuple[str | int, ...], *, url: str) -> object:
    """``payload[path[0]][path[1]]…``, or ``LLMUnavailable`` naming what is missing."""
    value: Any = payload  # JSON of any shape: each step is tried, and a wrong one reported
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            value = None
        if value is None:
            spelled = "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path)
            raise LLMUnavailable(f"{shown(url)} answered without {spelled.lstrip('.')}")
    return value


def text(payload: object, path: tuple[str | int, ...], *, url: str) -> str:
    """The string at ``path`` in ``payload``; ``LLMUnavailable`` if there is none."""
    value = field(payload, path, url=url)
    if not isinstance(value, str):
        raise LLMUnavailable(f"{shown(url)} answered a {type(value).__name__}, not text")
    return value


def vectors(raw: object, count: int, *, url: str) -> list[list[float]]:
    """``raw`` checked to be ``count`` vectors of numbers pgvector can hold, all of one
    length."""
    if not isinstance(raw, list):
        raise LLMUnavailable(f"{shown(url)} answered no list of embeddings")
    if len(raw) != count:
        noun = "embedding" if len(raw) == 1 else "embeddings"
        raise LLMUnavailable(f"{shown(url)} answered {len(raw)} {noun} for {count} texts")
    result = []
    for vector in raw:
        if not _is_vector(vector):
            raise LLMUnavailable(f"{shown(url)} answered an embedding {_what_is_wrong(vector)}")
        result.append([float(x) for x in vector])
    if len({len(vector) for vector in result}) > 1:
        raise LLMUnavailable(f"{shown(url)} answered embeddings of different lengths")
    return result


# pgvector stores 32-bit floats. JSON has no infinity or NaN, but a parser reads 1e999 as
# infinity (and Python's, NaN as NaN), and 1e300 is a float no 32-bit float holds: pgvector
# refuses each, so a search would fail in the database (a 500), and a worker's store with a
# database error that no document records.
FLOAT32_MAX = 3.4028234663852886e38


def _is_storable(x: object) -> bool:
    """A number pgvector can hold (NaN fails the comparison too)."""
    return (
        isinstance(x, int | float) and not isinstance(x, bool) and -FLOAT32_MAX <= x <= FLOAT32_MAX
    )


def _is_vector(raw: object) -> bool:
    return isinstance(raw, list) and bool(raw) and all(_is_storable(x) for x in raw)


def _what_is_wrong(vector: object) -> str:
    """Why ``vector``, which ``_is_vector`` refused, is no embedding Hearth can store."""
    if isinstance(vector, list) and vector and all(_is_finite(x) for x in vector):
        return "holding a number beyond ±3.4e38, which pgvector's 32-bit floats cannot hold"
    return "that is not a list of finite numbers"


def _is_finite(x: object) -> bool:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return False
    return isinstance(x, int) or math.isfinite(x)  # an int of any size is finite


def _server_error(response: httpx.Response) -> str:
    """``": <the server's error message>"`` when its JSON holds one (both Ollama's
    ``{"error": "…"}`` and OpenAI's ``{"error": {"message": "…"}}``), else nothing. Never
    used for 401/403: OpenAI quotes part of a refused key there."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    if isinstance(error, dict):
        error = error.get("message")
    if not isinstance(error, str) or not error.strip():
        return ""
    return ": " + textwrap.shorten(error, width=200, placeholder="…")
