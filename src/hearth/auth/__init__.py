"""The operator login: one password, a throttle on guessing it, sessions kept server-side
so that they end (logout, a new password, expiry)."""
