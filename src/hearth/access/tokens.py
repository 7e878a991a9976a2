"""API token secrets: how they are made, recognised and hashed.

A token is ``hth_`` and 43 url-safe characters (32 random bytes). The prefix lets the log
redaction (``hearth.log.redaction.API_TOKEN``) and secret scanners find one anywhere; the
database keeps only its SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Literal

Scope = Literal["read", "write", "metrics"]
# read: GET the data routes (and health details); write: add data, start tasks, /mcp;
# metrics: GET /metrics.
SCOPES: tuple[Scope, ...] = ("read", "write", "metrics")

PREFIX = "hth_"
RANDOM_BYTES = 32
# What the console and `hearth token list` show of a token: the prefix and 4 characters.
SHOWN_LENGTH = len(PREFIX) + 4
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def new_token() -> str:
    """A fresh token: ``hth_`` and 256 random bits, url-safe."""
    return PREFIX + secrets.token_urlsafe(RANDOM_BYTES)


def fingerprint(token: str) -> str:
    """The hex SHA-256 a token is stored and looked up by."""
    return hashlib.sha256(token.encode()).hexdigest()


def shown_part(token: str) -> str:
    """The beginning of ``token`` that may be shown again later (``hth_Ab12``)."""
    return token[:SHOWN_LENGTH]


def looks_like_token(presented: str) -> bool:
    """Whether ``presented`` is shaped like a Hearth API token (else no lookup is needed)."""
    return presented.startswith(PREFIX) and len(presented) > SHOWN_LENGTH
