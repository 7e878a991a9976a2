"""Load the settings once, turning every problem into one message a person can act on."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from hearth.config.settings import SECRET_FIELDS, URL_FIELDS, Settings, env_names
from hearth.errors import StartupError

# What to do about a variable, added to its error message.
_HINTS = {
    "SECRET_KEY": "run `hearth init` to write a .env with a fresh one, or set it yourself "
    "(for example: python3 -c 'import secrets; print(secrets.token_urlsafe(48))')",
    "DATABASE_URL": "or leave it unset to use the embedded PostgreSQL",
    "MCP_TOKEN": "generate one with python3 -c 'import secrets; print(secrets.token_urlsafe(32))', "
    "or leave it unset to turn /mcp off",
}

# Messages for pydantic's own error types, in plain words.
_PLAIN = {
    "missing": "is required but not set",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
    "literal_error": "must be one of {expected}",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
}

# Whose bad input is not echoed back: a secret, or a URL that may carry a password.
_NOT_ECHOED = SECRET_FIELDS | URL_FIELDS


def load_settings(**overrides: Any) -> Settings:  # noqa: ANN401 (any field's raw input; pydantic checks it)
    """Read the settings, or raise ``StartupError`` naming each bad variable and its fix."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise StartupError(describe_errors(exc)) from None


def _variable_for(location: tuple[int | str, ...]) -> tuple[str, str | None]:
    """The environment variable name for an error location, and the field name if known."""
    if not location:
        return "settings", None
    name = str(location[0])
    for field_name, field in Settings.model_fields.items():
        names = env_names(field_name, field)
        if name == field_name or name.upper() in names:
            return names[0], field_name
    return name.upper(), None


def describe_errors(exc: ValidationError) -> str:
    """One line a bad variable: its name, what is wrong, and how to fix it."""
    lines = []
    for error in exc.errors(include_url=False):
        variable, field_name = _variable_for(error["loc"])
        kind = error["type"]
        context = error.get("ctx") or {}
        if kind == "secret_file":
            variable = context["variable"]
            lines.append(f"  {variable}: {context['path']} cannot be read: {context['reason']}")
            continue
        template = _PLAIN.get(kind)
        message = template.format(**context) if template else error["msg"]
        if kind != "missing" and field_name not in _NOT_ECHOED and template:
            message += f" (got {error['input']!r})"
        if hint := _HINTS.get(variable):
            message += f"; {hint}"
        lines.append(f"  {variable}: {message}")
    count = len(lines)
    noun = "setting needs" if count == 1 else "settings need"
    header = f"Hearth cannot start: {count} {noun} attention."
    footer = (
        "Settings come from the environment, the .env file, or secret files "
        "(every variable is described in .env.example)."
    )
    return "\n".join([header, *lines, footer])
