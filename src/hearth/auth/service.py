"""The operator's password and the brake on guessing it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque

# scrypt at n=2**14, r=8: about 50 ms and 16 MB per attempt, a real cost to a guesser.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
# Clients the login brake remembers before it first forgets those gone quiet.
_SWEEP_AT = 1024


class PasswordVerifier:
    """Holds a salted scrypt hash of ``ADMIN_PASSWORD``, never the password itself."""

    def __init__(self, password: str | None) -> None:
        self.configured = bool(password)
        self._salt = secrets.token_bytes(16)
        self._hash = self._derive(password) if password else b""

    def _derive(self, candidate: str) -> bytes:
        return hashlib.scrypt(candidate.encode("utf-8"), salt=self._salt, **_SCRYPT)

    def verify(self, candidate: str) -> bool:
        """Constant-time comparison; always false when no password is configured.
        CPU-bound for ~50 ms: call it in a worker thread."""
        if not self.configured:
            return False
        return hmac.compare_digest(self._derive(candidate), self._hash)


class OperatorAuth:
    """The password check and the login brake of one Hearth process."""

    def __init__(self, password: str | None) -> None:
        self.password = PasswordVerifier(password)
        self.throttle = LoginThrottle()


class LoginThrottle:
    """At most ``limit`` failed logins per client address within ``window`` seconds.

    An attempt counts from the moment it is admitted, before its password is checked: sixty
    guesses sent at once are admitted five, not sixty (a check takes ~50 ms in a thread, so
    counting only finished failures would let every concurrent guess through)."""

    def __init__(self, limit: int = 5, window: float = 900.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._sweep_at = _SWEEP_AT

    def admit(self, client: str) -> int:
        """0 and the attempt is counted, or the seconds until ``client`` may try again."""
        if len(self._failures) >= self._sweep_at:
            self._forget_quiet_clients()
        attempts = self._recent(client)
        if len(attempts) >= self.limit:
            return max(1, int(attempts[0] + self.window - time.monotonic()) + 1)
        attempts.append(time.monotonic())
        return 0

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s attempts: the password was right."""
        self._failures.pop(client, None)

    def _forget_quiet_clients(self) -> None:
        """Forget the clients whose last failure has left the window; sweep again once the
        table has doubled. Each admit costs O(1) on average, and the table holds at most
        twice the clients that failed within the window (whom each guess's scrypt check
        slows down): a client that failed and went away is not kept for ever."""
        horizon = time.monotonic() - self.window
        self._failures = {
            client: failures
            for client, failures in self._failures.items()
            if failures and failures[-1] >= horizon
        }
        self._sweep_at = max(_SWEEP_AT, 2 * len(self._failures))

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        horizon = time.monotonic() - self.window
        while failures and failures[0] < horizon:
            failures.popleft()
        return failures


# Why a browser was sent to the login page, by a code the page derives from the session and
# from the path it was sent from (never text from the URL): the page says it in words.
LOGIN_REASONS = {
    "ended": "Your session ended: log in again to carry on.",
    "config": "Log in to change settings.",
    "tokens": "Log in to manage API tokens.",
    "activity": "Log in to see the activity log.",
    "details": "Log in to see details: versions, addresses and errors.",
    "page": "Log in to see this page.",
}
_REASON_BY_PATH = {
    "/config": "config",
    "/tokens": "tokens",
    "/activity": "activity",
    "/": "details",
    "/status": "details",
}


def login_reason(next_path: str | None, *, ended: bool) -> str | None:
    """What the login page says about why the operator is there: their session ended, or
    the page they asked for (``next_path``) needs a login. None when they came of their
    own accord (no ``next``)."""
    if ended:
        return LOGIN_REASONS["ended"]
    if not next_path:
        return None
    path = next_path.split("?", 1)[0]
    section = "/" + path.strip("/").split("/", 1)[0] if path.strip("/") else "/"
    return LOGIN_REASONS[_REASON_BY_PATH.get(section, "page")]
