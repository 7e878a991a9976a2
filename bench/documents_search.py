"""Search: ``GET /documents/search`` against the same pgvector query issued directly, and
the recall of both against an exact search (no index).

A search through Hearth also embeds its query (a call to the model server) where the direct
query is handed the vector: beside the target's baseline, a second one asks the same
embedding server for the query's vector with a bare HTTP client (the standard library's),
then issues the direct query, so the report shows what the model call alone costs."""

from __future__ import annotations

import http.client
import json
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import psycopg

from bench import documents_corpus
from bench.common import LOOPBACK, BenchError

K = 10
WARM_UP = 20
# The three ways of asking, in an order that rotates from one query to the next, so none
# always runs first (on a warmer or colder cache).
_ARMS = (
    ("api", "direct", "embedded"),
    ("direct", "embedded", "api"),
    ("embedded", "api", "direct"),
)
REQUEST_TIMEOUT_S = 30.0
# The query Hearth's repository issues (hearth.documents.repository.nearest), with the
# same settings; only the vector size is spelled here.
_SIZE = documents_corpus.DIMENSIONS
_VECTOR = f"embedding::vector({_SIZE})"
_NEAREST = (
    f"SELECT id, text, metadata, 1 - ({_VECTOR} <=> %(query)s::vector({_SIZE})) AS score "  # noqa: S608 (constants only)
    f"FROM documents WHERE embedding_dim = {_SIZE} AND embedding_model = %(model)s "
    f"ORDER BY {_VECTOR} <=> %(query)s::vector({_SIZE}) LIMIT %(k)s"
)


@dataclass
class Search:
    api_ms: list[float]
    direct_ms: list[float]
    embedded_ms: list[float]  # the query's vector asked for with a bare client, then direct
    floor_ms: list[float]  # GET /documents/{id}: an authorized API read, no search
    api_recall: float  # recall@K of the API's results against the exact search
    direct_recall: float  # the same for the direct query at the ef_search given
    ef_search: int


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def p50(values: list[float]) -> float:
    return statistics.median(values)


def p95(values: list[float]) -> float:
    return percentile(values, 0.95)


def _direct(
    connection: psycopg.Connection, vector: str, ef_search: int, *, exact: bool = False
) -> list[int]:
    with connection.transaction():
        connection.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), "
            "set_config('hnsw.iterative_scan', 'strict_order', true)",
            (str(ef_search),),
        )
        if exact:
            connection.execute("SET LOCAL enable_indexscan = off")
        parameters = {
            "query": vector,
            "model": documents_corpus.MODEL,
            "k": K,
        }
        return [row[0] for row in connection.execute(_NEAREST, parameters).fetchall()]


def _api(connection: http.client.HTTPConnection, token: str, text: str) -> list[int]:
    path = "/documents/search?" + urlencode({"q": text, "k": K})
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise BenchError(f"GET /documents/search answered {response.status}: {body[:300]!r}")
    return [hit["id"] for hit in json.loads(body)["results"]]


def _get(connection: http.client.HTTPConnection, token: str, document_id: int) -> None:
    connection.request(
        "GET", f"/documents/{document_id}", headers={"Authorization": f"Bearer {token}"}
    )
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise BenchError(f"GET /documents/{document_id} answered {response.status}: {body[:300]!r}")


def _embed(connection: http.client.HTTPConnection, text: str) -> str:
    """The query's vector from the embedding server (Ollama's ``/api/embed``), as pgvector
    text."""
    body = json.dumps({"model": documents_corpus.MODEL, "input": [text]})
    connection.request("POST", "/api/embed", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        raise BenchError(f"POST /api/embed answered {response.status}: {answer[:300]!r}")
    [vector] = json.loads(answer)["embeddings"]
    return json.dumps(vector, separators=(",", ":"))


def _recall(found: list[list[int]], exact: list[list[int]]) -> float:
    hits = sum(len(set(f) & set(e)) for f, e in zip(found, exact, strict=True))
    return hits / sum(len(e) for e in exact)


def measure_search(  # noqa: PLR0913 (what the search runs against)
    url: str,
    port: int,
    token: str,
    corpus: documents_corpus.Corpus,
    ef_search: int,
    *,
    embedding_port: int,
) -> Search:
    """Each query through the API, directly, and directly after asking the embedding
    server (on ``embedding_port``) for its vector, in turn, which goes first rotating; as
    many reads of one document through the API (what any authorized request costs); then
    the exact results of each query."""
    api_ms: list[float] = []
    direct_ms: list[float] = []
    embedded_ms: list[float] = []
    api_ids: list[list[int]] = []
    direct_ids: list[list[int]] = []
    floor_ms: list[float] = []
    http_connection = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT_S)
    model_connection = http.client.HTTPConnection(
        LOOPBACK, embedding_port, timeout=REQUEST_TIMEOUT_S
    )
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            for text in corpus.queries[:WARM_UP]:
                _api(http_connection, token, text)
                _direct(connection, _embed(model_connection, text), ef_search)
            for number, text in enumerate(corpus.queries):
                vector = corpus.vectors[text]
                for which in _ARMS[number % len(_ARMS)]:
                    started = time.perf_counter()
                    if which == "api":
                        api_ids.append(_api(http_connection, token, text))
                        api_ms.append((time.perf_counter() - started) * 1000)
                    elif which == "direct":
                        direct_ids.append(_direct(connection, vector, ef_search))
                        direct_ms.append((time.perf_counter() - started) * 1000)
                    else:
                        _direct(connection, _embed(model_connection, text), ef_search)
                        embedded_ms.append((time.perf_counter() - started) * 1000)
            for number in range(len(corpus.queries)):
                started = time.perf_counter()
                _get(http_connection, token, 1 + number * len(corpus.texts) // len(corpus.queries))
                floor_ms.append((time.perf_counter() - started) * 1000)
            exact = [
                _direct(connection, corpus.vectors[text], ef_search, exact=True)
                for text in corpus.queries
            ]
    finally:
        http_connection.close()
        model_connection.close()
    return Search(
        api_ms=api_ms,
        direct_ms=direct_ms,
        embedded_ms=embedded_ms,
        floor_ms=floor_ms,
        api_recall=_recall(api_ids, exact),
        direct_recall=_recall(direct_ids, exact),
        ef_search=ef_search,
    )
