"""Errors Hearth raises on purpose, each knowing how it should reach the user."""

from __future__ import annotations


class HearthError(Exception):
    """An expected failure with a message fit for the person who caused it.

    ``status_code`` is what an HTTP handler answers with; the message is shown as it is,
    so it must never hold a secret. ``field_errors`` names, by field, each input that was
    refused and why (API clients get them as the error body's ``errors``).
    """

    status_code: int = 500

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        field_errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.field_errors = field_errors or {}
        if status_code is not None:
            self.status_code = status_code


class StartupError(HearthError):
    """Hearth cannot start: bad settings, no database, a failed migration.

    The command line prints the message and exits with status 1, without a traceback.
    """
