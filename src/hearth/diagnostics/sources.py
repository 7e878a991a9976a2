"""Settings as a bug report shows them: every infrastructure setting with where it came from
(a secret only as "set" or "unset"), and every runtime value with its source."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from hearth.config.service import RuntimeValues
from hearth.config.settings import SECRET_FIELDS, Settings, env_names, secrets_dirs
from hearth.diagnostics.schemas import InfrastructureSetting, RuntimeSetting
from hearth.kit.urls import mask_url, mask_urls


def infrastructure(
    settings: Settings, environ: Mapping[str, str] | None = None, dotenv: Path = Path(".env")
) -> list[InfrastructureSetting]:
    """Every infrastructure setting, by name, with its value shown and its source."""
    variables = os.environ if environ is None else environ
    dotenv_names = _dotenv_names(dotenv)
    shown: list[InfrastructureSetting] = []
    for name, field in sorted(Settings.model_fields.items()):
        names = env_names(name, field)
        value = getattr(settings, name)
        secret = name in SECRET_FIELDS
        shown.append(
            InfrastructureSetting(
                name=name,
                variable=names[0],
                value=("set" if value else "unset") if secret else _plain(value),
                secret=secret,
                source=_source(
                    was_set=name in settings.model_fields_set,
                    names=names,
                    environ=variables,
                    dotenv_names=dotenv_names,
                ),
            )
        )
    return shown


def runtime(values: RuntimeValues) -> list[RuntimeSetting]:
    """Every runtime value in force (URLs masked) with its source and its variable."""
    return [
        RuntimeSetting(name=name, value=value.shown, source=value.source, variable=value.variable)
        for name, value in values.items()
    ]


def _plain(value: Any) -> str | int | float | bool | None:  # noqa: ANN401 (any setting's type)
    """A non-secret value as JSON holds it; URLs (and text quoting them) masked."""
    if isinstance(value, SecretStr):  # never reached: secrets are SECRET_FIELDS
        return "set"
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    return mask_url(text) if "://" in text and " " not in text else mask_urls(text)


def _source(
    *, was_set: bool, names: list[str], environ: Mapping[str, str], dotenv_names: set[str]
) -> str:
    """Where a setting's value came from, in Settings' order of precedence."""
    if not was_set:
        return "default"
    found = (
        next((f"environment ({n})" for n in names if n in environ), None)
        or next((f"file named by {n}_FILE" for n in names if environ.get(f"{n}_FILE")), None)
        or next((f".env ({n})" for n in names if n in dotenv_names), None)
    )
    if found:
        return found
    for directory in secrets_dirs():
        if any((directory / n.lower()).is_file() or (directory / n).is_file() for n in names):
            return f"secrets directory ({directory})"
    return "argument"


def _dotenv_names(path: Path) -> set[str]:
    """The variables ``path`` sets, upper-cased; none when it cannot be read."""
    from dotenv import dotenv_values

    try:
        return {name.upper() for name in dotenv_values(path)}
    except (OSError, UnicodeDecodeError):
        return set()
