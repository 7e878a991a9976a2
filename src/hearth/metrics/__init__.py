"""Prometheus metrics: the app's own registry, the request middleware, ``GET /metrics`` and
what it gathers at scrape time (see docs/metrics.md)."""
