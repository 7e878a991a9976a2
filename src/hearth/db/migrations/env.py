"""Alembic environment.

Hearth passes its own connection (``config.attributes["connection"]``) when it migrates at
start-up or in ``hearth migrate``. Run as the ``alembic`` command (``alembic check``,
``alembic revision --autogenerate``), it connects to ``DATABASE_URL``.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from hearth.db import vector
from hearth.kit.urls import normalize_database_url
from hearth.models import Base

target_metadata = Base.metadata
# Tables that live in Hearth's database but belong to others: the embedded queue's (kombu)
# and Celery's results. Autogenerate must not propose to drop them.
FOREIGN_TABLE_PREFIXES = ("kombu_", "celery_")


def include_object(
    obj: object,
    name: str | None,
    type_: str,
    reflected: bool,  # noqa: FBT001 (Alembic's callback signature, called positionally)
    compare_to: object,
) -> bool:
    """Whether autogenerate compares ``obj``: not other programs' tables, nor what
    pgvector brings."""
    if type_ == "table" and reflected and compare_to is None and name:
        return not name.startswith(FOREIGN_TABLE_PREFIXES)
    # What pgvector brings is managed by hearth.db.vector, not by migrations: the column
    # exists only where the server has pgvector, and one HNSW index per vector size.
    if type_ == "column" and name == "embedding":
        table = getattr(obj, "table", None)
        return getattr(table, "name", None) != "documents"
    return not (type_ == "index" and name and name.startswith(vector.INDEX_PREFIX))


def _url_from_environment() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit(
            "DATABASE_URL is not set: the alembic command needs a PostgreSQL URL "
            "(Hearth itself migrates its embedded database at start-up)."
        )
    return normalize_database_url(url)


def run_offline() -> None:
    """Write the migrations out as SQL for ``DATABASE_URL`` (``alembic upgrade --sql``)."""
    context.configure(
        url=_url_from_environment(), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate over the connection Hearth passes, else over one to ``DATABASE_URL``."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, include_object=include_object
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url_from_environment(), poolclass=pool.NullPool)
    with engine.connect() as own_connection:
        context.configure(
            connection=own_connection,
            target_metadata=target_metadata,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
