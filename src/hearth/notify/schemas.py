"""What a notice says, and what became of it at each receiver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Apprise's notice types: receivers show them as colours or icons.
Kind = Literal["failure", "success", "info"]


@dataclass(frozen=True)
class Notice:
    """One message to every receiver: a title, a body, and its kind."""

    title: str
    body: str
    kind: Kind = "info"


@dataclass(frozen=True)
class Delivery:
    """The outcome at one receiver, named by its position in NOTIFY_URLS and its service
    (``#2 ntfy``), never by its URL; ``reason`` is secret-free."""

    position: int
    service: str
    scheme: str
    sent: bool
    attempts: int
    reason: str = ""

    @property
    def label(self) -> str:
        """How the receiver is named on pages and in logs."""
        return f"#{self.position} {self.service} ({self.scheme}://)"
