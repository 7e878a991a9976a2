"""PostgreSQL: the async engine, the unit of work, migrations, pgvector, and the embedded
server for running with nothing installed."""
