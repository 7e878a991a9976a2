"""The runtime settings an operator may change on the config page: a closed list, each key
with its type, validation, default and description. Nothing secret is ever on it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from hearth.log.redaction import SENSITIVE_KEY

Kind = Literal["choice", "url", "text", "date"]

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+\-]*$")
# Azure OpenAI's versions: 2024-10-21, 2025-04-01-preview, preview, latest.
_API_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,39}$")


class InvalidValue(ValueError):
    """A value refused for a runtime key; the message says why, fit to show the operator."""


@dataclass(frozen=True)
class RuntimeKey:
    """One allowlisted key. ``variable`` (the key upper-cased) and ``aliases`` are the
    environment variables that override it and lock it on the page."""

    name: str
    label: str
    description: str
    kind: Kind
    default: str = ""
    choices: tuple[str, ...] = ()
    max_length: int = 255
    aliases: tuple[str, ...] = ()
    # The help beside the field when the page says it better than the description (which
    # documents the variable too): a date picker shows the browser's format, not ISO's.
    form_help: str = ""

    def __post_init__(self) -> None:
        # Secrets live in the environment or secret files, never in the database.
        if SENSITIVE_KEY.search(self.name):
            raise ValueError(f"{self.name} looks like a secret and cannot be a runtime setting")

    @property
    def variable(self) -> str:
        """The environment variable named after the key."""
        return self.name.upper()

    @property
    def help(self) -> str:
        """The help shown beside the field on the config page."""
        return self.form_help or self.description

    @property
    def variables(self) -> tuple[str, ...]:
        """Every environment variable that overrides the key, its own name first."""
        return (self.variable, *self.aliases)

    def validate(self, raw: str) -> str:
        """The value as it will be stored, or ``InvalidValue`` saying what is wrong."""
        value = raw.strip()
        if "\x00" in value:
            raise InvalidValue("holds a NUL character, which PostgreSQL cannot store")
        if len(value) > self.max_length:
            raise InvalidValue(f"is {len(value)} characters long; at most {self.max_length}")
        if self.kind == "choice":
            if value not in self.choices:
                raise InvalidValue(f"must be one of: {', '.join(self.choices)}")
        elif value == "":
            return value  # an empty url, text or date means "not set"
        elif self.kind == "url":
            value = _valid_url(value)
        elif self.kind == "date":
            value = _valid_date(value)
        elif self.kind == "text" and not _MODEL_NAME.match(value):
            raise InvalidValue("may hold letters, digits and . _ : / @ + - only (e.g. llama3.2:3b)")
        return value


def _valid_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (parses the port, raising on a bad one)
    except ValueError as exc:
        raise InvalidValue(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValue("must be an http:// or https:// URL, e.g. http://127.0.0.1:11434")
    if parts.username or parts.password:
        raise InvalidValue("must not contain a user name or password; use LLM_API_KEY")
    if parts.fragment or value.endswith("#"):
        raise InvalidValue("must not hold a #fragment")
    _only_api_version(parts.query)
    return value.removesuffix("?").rstrip("/")


def _only_api_version(query: str) -> None:
    """A query may name Azure OpenAI's ``api-version`` and nothing else: a credential in
    the URL would be shown wherever the URL is, and sent wherever the URL points."""
    parameters = parse_qsl(query, keep_blank_values=True)
    names = [name for name, _ in parameters]
    if any(name != "api-version" for name in names) or (query and not parameters):
        raise InvalidValue(
            "must not carry query parameters other than Azure's api-version "
            "(a key belongs in LLM_API_KEY, never in the URL)"
        )
    if len(names) > 1:
        raise InvalidValue("names api-version more than once")
    if parameters and not _API_VERSION.match(parameters[0][1]):
        raise InvalidValue("has an api-version that is not a version, e.g. 2024-10-21")


def _valid_date(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise InvalidValue("must be a date written YYYY-MM-DD, e.g. 2026-12-24") from None


ALLOWLIST: dict[str, RuntimeKey] = {
    key.name: key
    for key in (
        RuntimeKey(
            name="llm_provider",
            label="LLM provider",
            description="ollama, or openai for any OpenAI-compatible server "
            "(OpenAI, LM Studio, vLLM, llama.cpp).",
            kind="choice",
            default="ollama",
            choices=("ollama", "openai"),
        ),
        RuntimeKey(
            name="llm_endpoint",
            label="LLM endpoint",
            description="Base URL of the LLM server, e.g. http://127.0.0.1:11434 for Ollama. "
            "Empty: AI features are off.",
            kind="url",
            max_length=2048,
            aliases=("OLLAMA_BASE_URL",),
        ),
        RuntimeKey(
            name="llm_model",
            label="Chat model",
            description="The model that answers, e.g. llama3.2 or gpt-4o-mini.",
            kind="text",
            default="llama3.2",
        ),
        RuntimeKey(
            name="embedding_model",
            label="Embedding model",
            description="The model that turns documents into vectors, e.g. nomic-embed-text.",
            kind="text",
            default="nomic-embed-text",
        ),
        RuntimeKey(
            name="event_date",
            label="Event date",
            description="The date your service is about, YYYY-MM-DD. Empty: none.",
            kind="date",
            form_help="The date your service is about: pick one, or leave it empty for none.",
        ),
    )
}


def validate_values(values: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Each value as it would be stored, and the reason for each refused key or value."""
    cleaned: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, raw in values.items():
        key = ALLOWLIST.get(name)
        if key is None:
            errors[name] = f"is not a runtime setting; known: {', '.join(ALLOWLIST)}"
            continue
        try:
            cleaned[name] = key.validate(raw)
        except InvalidValue as exc:
            errors[name] = str(exc)
    return cleaned, errors
