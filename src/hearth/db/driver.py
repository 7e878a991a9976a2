"""A psycopg connection of its own, for the worker's short jobs (a prune, a question before
a run): no SQLAlchemy engine, no event loop, for a statement or two."""

from __future__ import annotations

import psycopg

from hearth.kit.urls import libpq_url

# How long a connection attempt waits for the database to answer, here and in the engines:
# a host that accepts connections and never answers must not hold a caller until TCP gives up.
CONNECT_TIMEOUT_SECONDS = 3


def connect(database_url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """A connection to ``database_url`` (SQLAlchemy's ``postgresql+psycopg://`` spelling
    taken too) that gives up after ``CONNECT_TIMEOUT_SECONDS`` when the database does not
    answer, as the engines do. Used as a context manager it commits on success, rolls back
    on an error, and closes."""
    return psycopg.connect(
        libpq_url(database_url), connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=autocommit
    )
