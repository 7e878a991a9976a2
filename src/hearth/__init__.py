"""Hearth: the core of a self-hosted, privacy-first Python service."""
