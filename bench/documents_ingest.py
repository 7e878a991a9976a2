"""Documents in: through ``POST /documents/batch``, and the baselines a bare PostgreSQL
client reaches on the same table, a ``COPY`` of the same rows and a batched ``UPDATE`` of
the same vectors."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import psycopg

from bench import documents_corpus
from bench.common import LOOPBACK, BenchError

API_BATCH = 100  # the most POST /documents/batch takes
API_CLIENTS = 4  # concurrent connections sending batches
WARM_UP_BATCHES = 10  # sent to each api process before the ingest is timed
UPDATE_BATCH = 100  # rows per UPDATE statement (and transaction) of the baseline
REQUEST_TIMEOUT_S = 60.0


def metadata(number: int) -> dict[str, object]:
    """Document ``number``'s metadata: small, as an application would attach."""
    return {"source": "bench", "number": number, "lang": "en"}


@dataclass
class Ingested:
    """What an ingest did: its seconds and the ids the API gave each document, in order."""

    seconds: float
    ids: list[int] = field(default_factory=list)

    def per_second(self) -> float:
        return len(self.ids) / self.seconds


def _batches(texts: Sequence[str]) -> Iterator[tuple[int, bytes]]:
    for start in range(0, len(texts), API_BATCH):
        chunk = texts[start : start + API_BATCH]
        documents = [
            {"text": text, "metadata": metadata(start + offset)}
            for offset, text in enumerate(chunk)
        ]
        yield start, json.dumps({"documents": documents}).encode()


def warm_up(ports: Sequence[int], token: str, texts: Sequence[str]) -> None:
    """WARM_UP_BATCHES batches of ``texts`` through each api process, one at a time: what a
    server does once after it starts (importing Celery for its first send, building its
    caches) is not part of its ingest rate. The caller empties the table afterwards."""
    for port in ports:
        ingest_api([port], token, texts[: WARM_UP_BATCHES * API_BATCH], clients=1)


def ingest_api(
    ports: Sequence[int], token: str, texts: Sequence[str], *, clients: int = API_CLIENTS
) -> Ingested:
    """Send ``texts`` through ``POST /documents/batch`` in batches of API_BATCH, from
    ``clients`` connections spread over ``ports`` (one api process each)."""
    batches = _batches(texts)
    lock = threading.Lock()
    ids: list[int] = [0] * len(texts)
    errors: list[str] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client(port: int) -> None:
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT_S)
        try:
            while not errors:
                with lock:
                    start, body = next(batches, (-1, b""))
                if start < 0:
                    return
                connection.request("POST", "/documents/batch", body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 202:
                    errors.append(
                        f"POST /documents/batch answered {response.status}: {answer[:300]!r}"
                    )
                    return
                given = json.loads(answer)["ids"]
                ids[start : start + len(given)] = given
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"POST /documents/batch failed: {exc}")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=client, args=(ports[i % len(ports)],)) for i in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise BenchError(errors[0])
    return Ingested(seconds, ids)


def copy_rows(url: str, texts: Sequence[str]) -> float:
    """Seconds to ``COPY`` the same rows (text, metadata) into ``documents``, one transaction."""
    rows = [(text, json.dumps(metadata(number))) for number, text in enumerate(texts)]
    with psycopg.connect(url) as connection:
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy("COPY documents (text, metadata) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        connection.commit()
        return time.perf_counter() - started


_UPDATE = """
UPDATE documents AS d
SET embedding = v.embedding::vector, embedding_model = %(model)s, embedding_dim = %(size)s,
    embedded_at = now(), error = NULL
FROM (SELECT unnest(%(ids)s::int[]) AS id, unnest(%(vectors)s::text[]) AS embedding) AS v
WHERE d.id = v.id AND d.embedded_at IS NULL
"""


def update_vectors(url: str, vectors: dict[str, str]) -> float:
    """Seconds to store every document's vector with batched ``UPDATE`` statements of
    UPDATE_BATCH rows, a transaction each (the text of each vector made beforehand)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT id, text FROM documents ORDER BY id").fetchall()
        batches = [
            {
                "model": documents_corpus.MODEL,
                "size": documents_corpus.DIMENSIONS,
                "ids": [row[0] for row in chunk],
                "vectors": [vectors[row[1]] for row in chunk],
            }
            for chunk in (rows[i : i + UPDATE_BATCH] for i in range(0, len(rows), UPDATE_BATCH))
        ]
        connection.commit()
        started = time.perf_counter()
        for batch in batches:
            connection.execute(_UPDATE, batch)
            connection.commit()
        return time.perf_counter() - started
