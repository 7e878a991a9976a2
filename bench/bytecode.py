"""Compiled bytecode, as every deployment has it, before anything is timed.

The Docker image (``UV_COMPILE_BYTECODE``) and the systemd install (``--compile-bytecode``)
ship ``.pyc`` files, and set ``PYTHONDONTWRITEBYTECODE``; a process started without them
compiles every module it imports from source, each time: twice as slow to start, and heavier
by the compiler's leftovers. ``make bench`` compiles ``.venv`` first (``.venv/.compiled``);
``ensure_compiled`` compiles Hearth itself (installed editable, from ``src``, which no
``uv sync`` compiles), and ``report`` names what is still without bytecode, so that a figure
measured without it says so.
"""

from __future__ import annotations

import compileall
import importlib.util
import struct
import sys
from pathlib import Path

import hearth

# Packages both sides of a comparison import at start-up: the baselines' and Hearth's.
CHECKED = ("fastapi", "uvicorn", "pydantic", "starlette", "sqlalchemy", "celery", "kombu")
_HEADER = struct.Struct("<4sIII")  # magic, flags, source mtime, source size (PEP 552)


def ensure_compiled() -> None:
    """Write the bytecode of Hearth's own modules where it is missing or out of date."""
    compileall.compile_dir(Path(hearth.__file__).parent, quiet=1)


def stale(package: str) -> int:
    """How many of ``package``'s modules have no up-to-date ``.pyc`` beside them."""
    count = 0
    for root in _locations(package):
        for source in Path(root).rglob("*.py"):
            if not _fresh(source):
                count += 1
    return count


def _locations(package: str) -> list[str]:
    """Where ``package``'s modules are; none when it is not installed."""
    module = sys.modules.get(package)
    if module is not None:  # kombu, once imported, replaces its module and drops __spec__
        return list(getattr(module, "__path__", []))
    spec = importlib.util.find_spec(package)
    return list(spec.submodule_search_locations or []) if spec else []


def _fresh(source: Path) -> bool:
    cached = Path(importlib.util.cache_from_source(str(source)))
    try:
        header = cached.read_bytes()[: _HEADER.size]
        stat = source.stat()
    except OSError:
        return False
    if len(header) < _HEADER.size:
        return False
    magic: bytes
    flags: int
    mtime: int
    size: int
    magic, flags, mtime, size = _HEADER.unpack(header)
    if magic != importlib.util.MAGIC_NUMBER:
        return False
    if flags != 0:  # hash-based: checked by hash, not by time; present is enough here
        return True
    return mtime == int(stat.st_mtime) & 0xFFFFFFFF and size == stat.st_size & 0xFFFFFFFF


def report() -> str:
    """One detail line: whether the modules timed here start from compiled bytecode."""
    missing = {name: count for name in ("hearth", *CHECKED) if (count := stale(name))}
    if not missing:
        return (
            "  bytecode: compiled for hearth, " + ", ".join(CHECKED) + " (as the image and the "
            "systemd install ship it)"
        )
    listed = ", ".join(f"{name} {count}" for name, count in missing.items())
    return (
        f"  bytecode MISSING for some modules ({listed}): start-up and memory figures include "
        "compiling them; `make bench` compiles .venv first"
    )
