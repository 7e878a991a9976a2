"""The operator login: one password, a throttle on guessing it, a signed session."""
