"""Health: the registered checks run concurrently and briefly cached, the probe endpoints
(``/health``, ``/healthz``, ``/livez``, ``/readyz``) and the pages that show them."""
