"""Diagnostics: version, platform, settings and their sources, health, migrations, queues,
workers and the last warnings of a process, as one text for a bug report, secrets masked."""
