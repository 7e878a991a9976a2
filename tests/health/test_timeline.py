"""The arithmetic of the health history, with fixed times: availability is the time-weighted
share of ok between changes (unknown and unconfigured time count as neither), and the bar
shows each 16-minute slot's worst status, or none where nothing is known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hearth.health.timeline import (
    BAR_SLOTS,
    SLOT,
    Change,
    availability,
    bar,
    shown_age,
    shown_percent,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def at(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def test_availability_weighs_each_status_by_how_long_it_held() -> None:
    changes = [Change("ok", at(30)), Change("unreachable", at(6)), Change("ok", at(3))]
    # Of the last 24 h: 18 h ok, 3 h unreachable, 3 h ok.
    assert availability(changes, NOW - DAY, NOW) == 21 / 24


def test_time_before_the_first_change_is_unknown_and_left_out() -> None:
    changes = [Change("ok", at(12)), Change("unreachable", at(3))]
    assert availability(changes, NOW - DAY, NOW) == 9 / 12
    assert availability([], NOW - DAY, NOW) is None


def test_unconfigured_time_counts_neither_for_nor_against() -> None:
    changes = [Change("unconfigured", at(48)), Change("ok", at(6)), Change("unreachable", at(2))]
    assert availability(changes, NOW - DAY, NOW) == 4 / 6
    assert availability([Change("unconfigured", at(48))], NOW - DAY, NOW) is None


def test_a_change_in_force_before_the_window_counts_from_its_start() -> None:
    changes = [Change("unreachable", at(24 * 10)), Change("ok", at(24 * 3))]
    week = availability(changes, NOW - 7 * DAY, NOW)
    assert week == 3 / 7


def test_the_bar_has_90_slots_of_16_minutes_ending_now() -> None:
    slots = bar([Change("ok", at(48))], NOW)
    assert len(slots) == BAR_SLOTS == 90
    assert SLOT.total_seconds() == 16 * 60
    assert slots[0].start == NOW - DAY
    assert slots[-1].end == NOW
    assert all(slot.end - slot.start == SLOT for slot in slots)
    assert {slot.status for slot in slots} == {"ok"}


def test_a_slot_shows_its_worst_status_and_none_where_nothing_is_known() -> None:
    # Known from 10 h ago; a 5-minute outage inside the third slot from the end.
    outage = NOW - 2 * SLOT - timedelta(minutes=8)
    changes = [
        Change("ok", at(10)),
        Change("unreachable", outage),
        Change("ok", outage + timedelta(minutes=5)),
    ]
    statuses = [slot.status for slot in bar(changes, NOW)]
    first_known = BAR_SLOTS - int(timedelta(hours=10) / SLOT) - 1  # the slot 10 h ago began in
    assert set(statuses[:first_known]) == {"none"}
    assert statuses[first_known] == "ok"  # partly unknown, partly ok: ok
    assert statuses[-3:] == ["unreachable", "ok", "ok"]
    assert statuses.count("unreachable") == 1


def test_unreachable_outranks_unconfigured_which_outranks_ok() -> None:
    start = NOW - SLOT
    changes = [Change("ok", at(30)), Change("unconfigured", start + timedelta(minutes=1))]
    assert bar(changes, NOW)[-1].status == "unconfigured"
    changes.append(Change("unreachable", start + timedelta(minutes=2)))
    assert bar(changes, NOW)[-1].status == "unreachable"


def test_numbers_for_people() -> None:
    assert shown_percent(None) == "\N{EN DASH}"
    assert shown_percent(1.0) == "100 %"
    assert shown_percent(0.99999) == "99.99 %"  # never rounded up to a perfect record
    assert shown_percent(0.875) == "87.50 %"
    assert shown_age(5) == "just now"
    assert shown_age(125) == "2 min ago"
    assert shown_age(3 * 3600 + 5) == "3 h ago"
    assert shown_age(3 * 86400) == "3 days ago"
