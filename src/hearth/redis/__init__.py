"""Redis: the client Hearth shares and the ``redis`` health check (redis-py itself is
imported only when ``REDIS_URL`` is set)."""
