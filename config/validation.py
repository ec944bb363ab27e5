"""The validation engine of the configuration: one error type, one `require`, and the RDS window arithmetic.

Plain Python (no aws_cdk): `app.py`, the stacks, `ops/` and `tools/` all import it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
_DAILY_WINDOW = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_WEEKLY_WINDOW = re.compile(r"^([a-z]{3}):(\d{2}):(\d{2})-([a-z]{3}):(\d{2}):(\d{2})$")


# The environment whose configuration is being built: set by `environment()` / `environment_scope()`.
_ENVIRONMENT: ContextVar[str | None] = ContextVar("config_environment", default=None)


class ConfigError(ValueError):
    """A configuration value is invalid. The message names the field and what is allowed.

    Raised while an environment is being built (see `environment`), the field path starts with its
    name: `staging.database.backup_retention_days`.
    """

    def __init__(self, field_path: str, problem: str) -> None:
        current = _ENVIRONMENT.get()
        if current is not None and not field_path.startswith(f"{current}."):
            field_path = f"{current}.{field_path}"
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


# --- Environment names in error messages ------------------------------------------------------------


def environment(name: str) -> str:
    """Name the environment whose sections are built next; returns `name`.

    Written as the first keyword argument, `EnvironmentConfig(name=environment("staging"), ...)`:
    Python evaluates keyword arguments in order, so every section built after it (`DatabaseConfig(...)`)
    reports `staging.database....`. `EnvironmentConfig` ends the scope once it has validated itself.
    """
    _ENVIRONMENT.set(name)
    return name


@contextmanager
def environment_scope(name: str | None) -> Iterator[None]:
    """ConfigErrors raised inside name the environment `name`; afterwards no environment is named."""
    _ENVIRONMENT.set(name)
    try:
        yield
    finally:
        _ENVIRONMENT.set(None)


# --- Field names and types from the dataclass annotations --------------------------------------------

_Section = TypeVar("_Section")


def config_section(path: str) -> Callable[[type[_Section]], type[_Section]]:
    """Check the keyword arguments of a config dataclass before its own `__post_init__` rules run.

    Put above `@dataclass(frozen=True, kw_only=True)`. A misspelt or missing field, or a value of the
    wrong type (from the annotations: str, int, float, bool, None, tuples, nested sections), is a
    ConfigError at `<path>.<field>` instead of a TypeError or a misleading message from a later rule
    (a string where a tuple is expected is the one-element tuple without its comma).
    """

    def decorate(cls: type[_Section]) -> type[_Section]:
        init = cls.__init__

        @functools.wraps(init)
        def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
            if path:
                _check_arguments(cls, path, args, kwargs)
                init(self, *args, **kwargs)
                return
            # The environment itself: its errors name it, and no scope outlives it.
            name = kwargs.get("name")
            with environment_scope(name if isinstance(name, str) else None):
                _check_arguments(cls, path, args, kwargs)
                init(self, *args, **kwargs)

        cls.__init__ = checked_init  # type: ignore[method-assign]
        return cls

    return decorate


def _field_path(section: str, name: str) -> str:
    return f"{section}.{name}" if section else name


def _check_arguments(cls: type, section: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    require(not args, section or cls.__name__, f"{cls.__name__} takes keyword arguments only")
    for name in kwargs:
        require(
            name in fields,
            _field_path(section, name),
            f"{cls.__name__} has no field {name!r}; allowed: {', '.join(fields)}",
        )
    missing = [
        name
        for name, field in fields.items()
        if field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
        and name not in kwargs
    ]
    require(
        not missing,
        _field_path(section, missing[0] if missing else ""),
        f"is required ({cls.__name__} needs {', '.join(missing)})",
    )
    hints = _type_hints(cls)
    for name, value in kwargs.items():
        problem = _type_problem(value, hints[name])
        require(problem is None, _field_path(section, name), str(problem))


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(expected: Any) -> str:
    if expected is type(None):
        return "None"
    if isinstance(expected, type):
        return expected.__name__
    return str(expected).replace("typing.", "")


def _type_problem(value: Any, expected: Any) -> str | None:
    """Why `value` is not of type `expected`, or None when it is."""
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(expected)
        if any(_type_problem(value, option) is None for option in options):
            return None
        others = [option for option in options if option is not type(None)]
        if len(others) == 1:  # `X | None`: say what is wrong with it as an X
            return f"{_type_problem(value, others[0])} (or None)"
        return f"{value!r} is not one of {' | '.join(_describe(option) for option in options)}"
    if origin is tuple:
        items = typing.get_args(expected)
        if isinstance(value, str):
            return (
                f"{value!r} is a string, not a tuple: a one-element tuple needs a trailing comma, "
                f"({value!r},)"
            )
        if not isinstance(value, tuple):
            return f"{value!r} is not a tuple ({_describe(expected)})"
        if len(items) == 2 and items[1] is Ellipsis:
            item_types: tuple[Any, ...] = (items[0],) * len(value)
        else:
            if len(items) != len(value):
                return f"{value!r} must have {len(items)} elements ({_describe(expected)})"
            item_types = items
        for item, item_type in zip(value, item_types, strict=True):
            problem = _type_problem(item, item_type)
            if problem is not None:
                return f"in {value!r}: {problem}"
        return None
    if origin is not None:  # another generic (dict[str, int], Literal[...]): its container type at most
        if isinstance(origin, type) and not isinstance(value, origin):
            return f"{value!r} is of type {type(value).__name__}, not {_describe(expected)}"
        return None
    if expected is type(None):
        return None if value is None else f"{value!r} must be None"
    if expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(expected, type):
        ok = isinstance(value, expected)
    else:
        return None  # an annotation this check does not know: the section's own rules decide
    return None if ok else f"{value!r} is of type {type(value).__name__}, not {_describe(expected)}"
