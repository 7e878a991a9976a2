"""Export and import of the runtime settings (``hearth settings export|import``): the rows of
the ``settings`` table as a JSON document, for backups and for moving to another host.

An import is checked whole against the allowlist before anything is written: every bad key
or value is reported, and then nothing is stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hearth.audit import service as audit_service
from hearth.audit.service import AuditTrail
from hearth.config import repository
from hearth.config.allowlist import ALLOWLIST, validate_values
from hearth.config.service import ConfigService, InvalidSettings, set_by

FORMAT = "hearth-settings"
FORMAT_VERSION = 1


class UnreadableDocument(ValueError):
    """The file is not a settings export; the message says why."""


async def export_document(session: AsyncSession) -> dict[str, Any]:
    """Every stored runtime setting, as the JSON document ``import_document`` reads back."""
    stored = await repository.get_all(session)
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": dict(sorted(stored.items())),
    }


def render(document: Mapping[str, Any]) -> str:
    """The document as written to a file: indented JSON with a final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def parse_document(text: str) -> dict[str, str]:
    """The settings held by an export (or by a plain ``{"key": "value"}`` object).

    Raises ``UnreadableDocument`` when the text is not such a document; the keys and values
    themselves are checked by ``import_settings``.
    """
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UnreadableDocument(f"is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise UnreadableDocument("must be a JSON object")
    if "format" in document:
        if document["format"] != FORMAT:
            raise UnreadableDocument(f"is a {document['format']!r} document, not {FORMAT!r}")
        if document.get("version") != FORMAT_VERSION:
            raise UnreadableDocument(
                f"has version {document.get('version')!r}; this Hearth reads version "
                f"{FORMAT_VERSION}"
            )
        settings = document.get("settings")
        if not isinstance(settings, dict):
            raise UnreadableDocument('has no "settings" object')
    else:
        settings = document
    bad = sorted(key for key, value in settings.items() if not isinstance(value, str))
    if bad:
        raise UnreadableDocument(f"values must be strings (not for: {', '.join(bad)})")
    return dict(settings)


def validate(values: Mapping[str, str]) -> dict[str, str]:
    """The values as they would be stored, or ``InvalidSettings`` naming every bad key."""
    cleaned, errors = validate_values(values)
    if errors:
        raise InvalidSettings(errors)
    return cleaned


async def import_settings(
    session: AsyncSession,
    values: Mapping[str, str],
    *,
    audit: AuditTrail | None = None,
    actor: str = "cli",
) -> dict[str, str]:
    """Validate every value, then store them all; all or nothing. Returns what was stored.
    With ``audit``, the import is recorded in the same transaction (old and new values).

    Unlike a save on the config page, keys set in the environment are stored too: the
    environment still wins while it sets them (``overridden`` names them), and the restored
    value takes over once it no longer does.
    """
    cleaned = validate(values)
    before = await repository.get_all(session)
    for name, value in cleaned.items():
        await repository.upsert(session, name, value)
    await session.flush()
    if audit is not None:
        changed = audit_service.changes(before, cleaned)
        await audit.record(
            "settings_imported",
            actor=actor,
            client=None,
            within=session,
            imported=sorted(cleaned),
            changes=changed,
        )
    return cleaned


def overridden(config: ConfigService, names: list[str]) -> dict[str, str]:
    """Of ``names``, those the environment sets, with the variable that sets each."""
    result = {}
    for name in names:
        key = ALLOWLIST[name]
        if config.environment_value(key) is not None:
            result[name] = set_by(key)
    return result
