"""The arithmetic of a component's history, from its changes alone: how long it was ok, and
the bar of recent intervals. Pure functions of the changes and the times given.

A change's status holds from its time until the next change (the last one until ``end``).
Time before the first known change is unknown: it counts neither for nor against.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

SlotStatus = Literal["ok", "unreachable", "unconfigured", "none"]

# 90 intervals over 24 hours: 16 minutes each, as an uptime bar shows them.
BAR_SLOTS = 90
BAR_SPAN = timedelta(hours=24)
SLOT = BAR_SPAN / BAR_SLOTS
# Which status a slot shows when several held during it: the worst, in this order.
_WORST_FIRST: tuple[SlotStatus, ...] = ("unreachable", "unconfigured", "ok")
_MINUTE, _HOUR, _DAY = 60, 3600, 86400


@dataclass(frozen=True)
class Change:
    """A component's status from ``at`` until its next change."""

    status: str
    at: datetime


@dataclass(frozen=True)
class Slot:
    """One interval of the bar and the worst status it saw (``none``: no data)."""

    start: datetime
    end: datetime
    status: SlotStatus


def _spans(changes: Sequence[Change], start: datetime, end: datetime) -> list[tuple[str, float]]:
    """(status, seconds) for each stretch of ``[start, end)`` that a change covers."""
    spans = []
    last = len(changes) - 1
    for index, change in enumerate(changes):
        if change.at >= end:
            break
        until = changes[index + 1].at if index < last else end
        if until <= start:
            continue
        begin = max(start, change.at)
        finish = min(end, until)
        spans.append((change.status, (finish - begin).total_seconds()))
    return spans


def availability(changes: Sequence[Change], start: datetime, end: datetime) -> float | None:
    """The share of ``[start, end)`` the component was ok, of the time it was ok or
    unreachable (0 to 1); None when none of that time is known. ``changes`` in time order,
    the one in force at ``start`` included."""
    spans = _spans(changes, start, end)
    ok = sum(seconds for status, seconds in spans if status == "ok")
    counted = ok + sum(seconds for status, seconds in spans if status == "unreachable")
    return ok / counted if counted > 0 else None


def bar(changes: Sequence[Change], end: datetime) -> list[Slot]:
    """The last 24 hours up to ``end`` in ``BAR_SLOTS`` slots, oldest first, each with the
    worst status that held during it."""
    start = end - BAR_SPAN
    times = [change.at for change in changes]
    slots = []
    for index in range(BAR_SLOTS):
        slot_start = start + SLOT * index
        slot_end = slot_start + SLOT
        # The change in force when the slot begins, and those made during it: found by
        # bisection, so a week of changes a minute apart costs no more than a quiet one.
        first = max(bisect_right(times, slot_start) - 1, 0)
        during = changes[first : bisect_left(times, slot_end)]
        seen = {status for status, _ in _spans(during, slot_start, slot_end)}
        worst: SlotStatus = next((s for s in _WORST_FIRST if s in seen), "none")
        slots.append(Slot(slot_start, slot_end, worst))
    return slots


def shown_percent(share: float | None) -> str:
    """``share`` for people: ``99.95 %``, never rounded up to 100 unless it is; a dash when
    unknown."""
    if share is None:
        return "\N{EN DASH}"
    if share >= 1:
        return "100 %"
    return f"{int(share * 10000) / 100:.2f} %"


def shown_age(seconds: float) -> str:
    """How long ago, in the largest unit that fits: ``just now``, ``5 min ago``, ``3 h ago``,
    ``2 days ago``."""
    if seconds < _MINUTE:
        return "just now"
    if seconds < _HOUR:
        return f"{int(seconds // _MINUTE)} min ago"
    if seconds < 2 * _DAY:
        return f"{int(seconds // _HOUR)} h ago"
    return f"{int(seconds // _DAY)} days ago"
