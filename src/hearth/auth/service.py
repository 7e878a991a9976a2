"""The operator's password and the brake on guessing it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque

# scrypt at n=2**14, r=8: about 50 ms and 16 MB per attempt, a real cost to a guesser.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


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
    """At most ``limit`` failed logins per client address within ``window`` seconds."""

    def __init__(self, limit: int = 5, window: float = 900.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again; 0 when it may try now."""
        failures = self._recent(client)
        if len(failures) < self.limit:
            return 0
        return max(1, int(failures[0] + self.window - time.monotonic()) + 1)

    def failed(self, client: str) -> None:
        """Count a failed login from ``client``."""
        self._recent(client).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s failed logins."""
        self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        horizon = time.monotonic() - self.window
        while failures and failures[0] < horizon:
            failures.popleft()
        return failures
