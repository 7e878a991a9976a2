"""Background work: Celery on Redis (or on PostgreSQL when no Redis is configured)."""
