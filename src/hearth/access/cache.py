"""The API tokens this process has verified lately, so that a script calling the API does not
cost a transaction of its own (checkout, BEGIN, SELECT, COMMIT) on every request.

Kept by the token's fingerprint, never its secret, for ``API_TOKEN_CACHE_SECONDS``; only
acceptances are kept (a refusal is asked of the database each time, so a token created a
moment ago works at once). A token revoked through this process is dropped at once
(``forget``, after the revocation commits); one revoked elsewhere (``hearth token revoke``,
another replica) is refused once its entry is older than the setting.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

# A process serves a handful of scripts; a flood of distinct valid tokens (whoever can make
# tokens can make thousands) evicts the least recently used instead of growing the cache.
MAX_ENTRIES = 256


@dataclass(frozen=True)
class Verified:
    """What the database said of a token it accepted."""

    name: str
    scopes: frozenset[str]
    expires_at: datetime | None  # the token's own expiry, checked on every use
    used_at: datetime | None  # last_used_at as last read or written by this process


class GrantCache:
    """The recent verifications of one process, at most ``size`` of them, each used for
    ``seconds`` (0: none kept)."""

    def __init__(self, seconds: float, size: int = MAX_ENTRIES) -> None:
        self._seconds = seconds
        self._size = size
        # fingerprint -> (time.monotonic() of the database's answer, the answer)
        self._entries: OrderedDict[str, tuple[float, Verified]] = OrderedDict()
        # Bumped by every ``forget``: a lookup that began before a revocation committed must
        # not store what it read (the row as it was) after the revocation dropped the entry.
        self.generation = 0

    def get(self, key: str) -> Verified | None:
        """The verification of the token whose fingerprint is ``key``, if it is recent."""
        found = self._entries.get(key)
        if found is None:
            return None
        at, verified = found
        if time.monotonic() - at >= self._seconds:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return verified

    def put(self, key: str, verified: Verified, generation: int) -> None:
        """Keep ``verified``, the database's answer just now, unless the cache is off or a
        token was revoked since the lookup began (``generation`` as it was then)."""
        if self._seconds <= 0 or generation != self.generation:
            return
        self._entries[key] = (time.monotonic(), verified)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def discard(self, key: str) -> None:
        """Drop the entry of ``key``: the database refused the token."""
        self._entries.pop(key, None)

    def forget(self, key: str) -> None:
        """Drop the entry of ``key`` and the lookups under way: the token was revoked here."""
        self.generation += 1
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


async def get_grant_cache(request: Request) -> GrantCache | None:
    """The app's cache of verified tokens; None for an app built without one."""
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
    cache: GrantCache | None = getattr(request.app.state, "grant_cache", None)
    return cache


GrantCacheDep = Annotated[GrantCache | None, Depends(get_grant_cache)]
