"""Settings: infrastructure settings read once at start-up, and the runtime values an
operator edits on the config page (environment > database > default)."""
