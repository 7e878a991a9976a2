"""The audit trail: security-relevant actions (logins, logouts, saves, imports, connection
tests, API tokens) with actor, client address and time, kept 90 days, never a secret."""
