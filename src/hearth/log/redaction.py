"""Keep secrets out of log lines, whatever shape the line takes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from structlog.typing import EventDict, WrappedLogger

from hearth.kit.urls import mask_urls

MASK = "***"

# A value is masked whole when its key contains one of these words, at any depth.
SENSITIVE_KEY = re.compile(
    r"token|secret|password|passwd|key|credential|authorization|cookie", re.IGNORECASE
)

# Shorter values would mask ordinary words all over the logs; the mask itself must also be
# shorter than any secret so that masking always terminates (see ``_scrub_literals``).
MIN_SECRET_LENGTH = len(MASK) + 1

# Hearth's API tokens (``hth_`` and 43 url-safe characters, see ``hearth.access.tokens``),
# wherever they appear, configured or not: a script that logs its own command line, a
# header echoed in an error. The 8 characters the console shows (``hth_Ab12``) stay.
API_TOKEN = re.compile(r"hth_[A-Za-z0-9_-]{16,}")
API_TOKEN_MASK = "hth_" + MASK

_PLAIN_TYPES = (bool, int, float, type(None))
_MAX_ROUNDS = 8


class Redactor:
    """A structlog processor that masks secrets in every value of an event.

    Four rules, applied at any depth of dicts, lists and tuples:
    values under a sensitive-looking key; passwords inside URLs; API tokens (``hth_…``);
    and any literal occurrence of a configured secret's value, in values and in keys.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._pattern: re.Pattern[str] | None = None
        self.set_secrets(secrets)

    def set_secrets(self, secrets: Iterable[str]) -> None:
        """Replace the configured secret values that are masked wherever they appear."""
        usable = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, usable))) if usable else None

    def __call__(
        self, _logger: WrappedLogger, _method_name: str, event_dict: EventDict
    ) -> EventDict:
        """The event with every secret in it masked."""
        return {self.scrub_text(str(k)): self._redact(k, v) for k, v in event_dict.items()}

    def _redact(self, key: object, value: object) -> object:
        # A yes/no (``session_cookie_secure``, ``mcp_token_set``) tells nothing secret.
        if (
            isinstance(key, str)
            and SENSITIVE_KEY.search(key)
            and value is not None
            and not isinstance(value, bool)
        ):
            return MASK
        return self.redact_value(value)

    def redact_value(self, value: object) -> object:
        """Mask secrets inside one value (recursing into containers)."""
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, _PLAIN_TYPES):
            return value
        if isinstance(value, Mapping):
            return {self.scrub_text(str(k)): self._redact(k, v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.redact_value(item) for item in value]
        # Anything else would be rendered through its str() or repr(); scrub that text.
        return self.scrub_text(str(value))

    def scrub_text(self, text: str) -> str:
        """Mask URL passwords, API tokens and configured secrets inside a piece of text."""
        for _ in range(_MAX_ROUNDS):
            scrubbed = self._scrub_literals(API_TOKEN.sub(API_TOKEN_MASK, mask_urls(text)))
            if scrubbed == text:
                return text
            text = scrubbed
        return MASK  # Never seen; if the rules ever chase each other, hide the whole text.

    def _scrub_literals(self, text: str) -> str:
        # Every replacement shortens the text, so repeating until nothing matches ends;
        # repeating matters because masking can join two halves of a secret together.
        if self._pattern is None:
            return text
        while True:
            replaced = self._pattern.sub(MASK, text)
            if replaced == text:
                return text
            text = replaced
