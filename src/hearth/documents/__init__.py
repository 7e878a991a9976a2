"""Documents: text in, embedded by the worker, found again by meaning (pgvector)."""
