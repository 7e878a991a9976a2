"""The runtime values a process read lately, so that a request acting on them (a search, a
chat, the dashboard) does not read the ``settings`` table each time.

Kept for ``RUNTIME_VALUES_CACHE_SECONDS``. A save on the config page drops them at once on
the process that saved (``forget``, after the save commits); a save on another replica, or
``hearth settings import``, is seen once they are older than the setting. The config page
itself always reads the database.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hearth.config.service import RuntimeValues


class RecentValues:
    """The values in force as last read, used for ``seconds`` (0: never kept)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._kept: tuple[float, RuntimeValues] | None = None  # (time.monotonic() of the read, it)
        # Bumped by every ``forget``: a read that began before a save committed must not keep
        # what it read (the values as they were) after the save dropped them.
        self.generation = 0

    def get(self) -> RuntimeValues | None:
        """The values kept, if they were read less than ``seconds`` ago."""
        if self._kept is None:
            return None
        at, values = self._kept
        if time.monotonic() - at >= self._seconds:
            self._kept = None
            return None
        return values

    def put(self, values: RuntimeValues, generation: int) -> None:
        """Keep ``values``, read just now, unless keeping is off or a save committed since
        the read began (``generation`` as it was then)."""
        if self._seconds > 0 and generation == self.generation:
            self._kept = (time.monotonic(), values)

    def forget(self) -> None:
        """Drop the values kept and the reads under way: they changed."""
        self.generation += 1
        self._kept = None
