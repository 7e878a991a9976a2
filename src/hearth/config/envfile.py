"""``hearth init``: a ``.env`` with fresh random secrets, readable by its owner only."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from hearth.errors import StartupError

_TEMPLATE = """\
# Written by `hearth init`. Keep this file private: it holds secrets.
# Every other setting is documented in .env.example; add the ones you need below.

# Signs sessions and tokens. Changing it logs everybody out.
SECRET_KEY={secret_key}

# Password of the operator console.
ADMIN_PASSWORD={admin_password}
"""


def write_env_file(path: str | Path, *, force: bool = False) -> Path:
    """Write a new env file with mode 0600; refuse to replace one unless ``force``."""
    target = Path(path)
    content = _TEMPLATE.format(
        secret_key=secrets.token_urlsafe(48), admin_password=secrets.token_urlsafe(18)
    )
    if target.exists() and not force:
        raise _exists(target)
    # Written beside the target and renamed over it, so no reader ever sees half a file
    # and the secrets never sit in a file with wider permissions.
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(content)
        if force:
            temporary.replace(target)
        else:
            os.link(temporary, target)  # fails if the file appeared meanwhile
    except FileExistsError:
        raise _exists(target) from None
    finally:
        temporary.unlink(missing_ok=True)
    return target


def _exists(target: Path) -> StartupError:
    return StartupError(
        f"{target} already exists; Hearth leaves it alone. Use --force to replace it "
        "(its secrets will be lost)."
    )
