"""The HTTP helpers every concern shares: errors as JSON or pages, templating, forms, CSRF,
the request middleware and the operator access decision."""
