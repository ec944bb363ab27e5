"""The validation engine of the configuration: one error type, one `require`, and the RDS window arithmetic.

Plain Python (no aws_cdk): `app.py`, the stacks, `ops/` and `tools/` all import it.
"""

from __future__ import annotations

import re

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
_DAILY_WINDOW = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_WEEKLY_WINDOW = re.compile(r"^([a-z]{3}):(\d{2}):(\d{2})-([a-z]{3}):(\d{2}):(\d{2})$")


class ConfigError(ValueError):
    """A configuration value is invalid. The message names the field and what is allowed."""

    def __init__(self, field_path: str, problem: str) -> None:
        super().__init__(f"invalid configuration {field_path}: {problem}")
        self.field_path = field_path


def require(condition: bool, field_path: str, problem: str) -> None:
    if not condition:
        raise ConfigError(field_path, problem)


def _minute_of_day(hours: str, minutes: str, field_path: str) -> int:
    hour, minute = int(hours), int(minutes)
    require(0 <= hour <= 23 and 0 <= minute <= 59, field_path, "hours must be 00-23 and minutes 00-59")
    return hour * 60 + minute


def daily_window_minutes(window: str, field_path: str) -> tuple[int, int]:
    """Parse an RDS daily window 'hh:mm-hh:mm' (UTC) into (start, end) minutes of the day.

    The end may be smaller than the start when the window crosses midnight; callers use
    `_intervals` to reason about it.
    """
    match = _DAILY_WINDOW.match(window)
    require(match is not None, field_path, f"{window!r} is not of the form 'hh:mm-hh:mm' (UTC)")
    assert match is not None
    start = _minute_of_day(match[1], match[2], field_path)
    end = _minute_of_day(match[3], match[4], field_path)
    duration = (end - start) % MINUTES_PER_DAY
    require(duration >= 30, field_path, f"{window!r} must last at least 30 minutes (RDS minimum)")
    return start, end


def weekly_window_minutes(window: str, field_path: str) -> tuple[int, int]:
    """Parse an RDS maintenance window 'ddd:hh:mm-ddd:hh:mm' (UTC) into minutes of the week."""
    match = _WEEKLY_WINDOW.match(window)
    require(
        match is not None,
        field_path,
        f"{window!r} is not of the form 'ddd:hh:mm-ddd:hh:mm' with ddd one of {', '.join(WEEKDAYS)}",
    )
    assert match is not None
    for day in (match[1], match[4]):
        require(day in WEEKDAYS, field_path, f"day {day!r} must be one of {', '.join(WEEKDAYS)}")
    start = WEEKDAYS.index(match[1]) * MINUTES_PER_DAY + _minute_of_day(match[2], match[3], field_path)
    end = WEEKDAYS.index(match[4]) * MINUTES_PER_DAY + _minute_of_day(match[5], match[6], field_path)
    duration = (end - start) % MINUTES_PER_WEEK
    require(30 <= duration <= MINUTES_PER_DAY, field_path, f"{window!r} must last 30 minutes to 24 hours")
    return start, end


def _intervals(start: int, end: int, period: int) -> list[tuple[int, int]]:
    """Half-open intervals within [0, period) covering a window that may wrap around."""
    if start < end:
        return [(start, end)]
    return [(start, period), (0, end)]


def _weekly_intervals_of_daily_window(start: int, end: int) -> list[tuple[int, int]]:
    intervals: list[tuple[int, int]] = []
    for day in range(7):
        offset = day * MINUTES_PER_DAY
        shifted_end = end if start < end else end + MINUTES_PER_DAY
        intervals.extend(
            _intervals(
                (offset + start) % MINUTES_PER_WEEK,
                (offset + shifted_end) % MINUTES_PER_WEEK,
                MINUTES_PER_WEEK,
            )
        )
    return intervals


def windows_overlap(daily_window: tuple[int, int], weekly_window: tuple[int, int]) -> bool:
    """Whether a window that recurs every day overlaps a weekly window (both in UTC minutes)."""
    weekly = _intervals(*weekly_window, MINUTES_PER_WEEK)
    return any(
        a_start < b_end and b_start < a_end
        for a_start, a_end in _weekly_intervals_of_daily_window(*daily_window)
        for b_start, b_end in weekly
    )
