"""The installed version of Hearth."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version


@cache
def hearth_version() -> str:
    """The version of the installed ``hearth-stack`` distribution."""
    try:
        return version("hearth-stack")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
