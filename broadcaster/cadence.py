"""Cadences: when, on a given local day, a programme airs or is sent.

Every cadence form (fixed times, N a day over a window, every N hours from an
anchor) reduces to a sorted set of wall-clock times of day, optionally limited
to days of the week and a range of dates. Working in wall-clock times keeps a
06:00 bulletin at 06:00 across daylight-saving changes; `instants` turns a day's
times into UTC instants, moving a time that does not exist (spring forward) to
the same distance after the gap and firing an ambiguous one (fall back) once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
DAY = timedelta(days=1)


def parse_time(text: str) -> time:
    """Read a wall-clock HH:MM (24-hour) time of day; HH:MM:SS where seconds matter."""
    match = _TIME.match(text)
    if not match:
        raise ValueError(f"invalid time {text!r}; use HH:MM from 00:00 to 23:59")
    return time(int(match[1]), int(match[2]), int(match[3] or 0))


def parse_duration(text: str) -> timedelta:
    """Read a duration such as "15m", "6h", "1h30m" or "45s"."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match:
        raise ValueError(f"invalid duration {text!r}; use e.g. '15m', '6h', '1h30m', '45s'")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    value = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if value <= timedelta(0):
        raise ValueError(f"duration {text!r} must be longer than zero")
    return value


def spread(count: int, first: time, last: time) -> tuple[time, ...]:
    """Place `count` slots evenly from `first` to `last`, both ends included.

    One slot a day goes at the start of the window, so raising a cadence from
    1 to 2 a day keeps the slot operators already know and adds a later one.
    """
    start = _seconds(first)
    span = _seconds(last) - start
    if count == 1:
        return (first,)
    return tuple(_time_of(start + round(i * span / (count - 1))) for i in range(count))


def every(step: timedelta, anchor: time) -> tuple[time, ...]:
    """The times of day at `anchor`, `anchor + step`, … within 24 hours (wrapped)."""
    if step <= timedelta(0) or step > DAY:
        raise ValueError("the step of 'every' must be more than zero and at most 24h")
    slots = []
    offset = timedelta(0)
    base = _seconds(anchor)
    while offset < DAY:
        slots.append(_time_of((base + int(offset.total_seconds())) % 86400))
        offset += step
    return tuple(sorted(set(slots)))


def _seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def _time_of(seconds: int) -> time:
    return time(seconds // 3600, seconds % 3600 // 60, seconds % 60)


def _clock(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


@dataclass(frozen=True)
class Cadence:
    """The slots of one programme at one level: times of day plus day filters."""

    times: tuple[time, ...]
    weekdays: frozenset[int] | None = None  # 0 = Monday; None = every day
    valid_from: date | None = None
    valid_until: date | None = None
    duration: timedelta | None = None
    level: str = ""  # the level this cadence was written for (it may hold above)

    def __post_init__(self) -> None:
        if list(self.times) != sorted(set(self.times)):
            raise ValueError("Cadence.times must be sorted and unique")

    def applies_on(self, day: date) -> bool:
        """Say whether the cadence has slots on this local date."""
        if self.weekdays is not None and day.weekday() not in self.weekdays:
            return False
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_until is None or day <= self.valid_until

    def describe(self) -> str:
        """Render the slots for tables and warnings: '06:00 11:00 17:00 (mon-fri)'."""
        text = " ".join(_clock(t) for t in self.times)
        if self.weekdays is not None:
            text += " (" + ",".join(WEEKDAYS[d] for d in sorted(self.weekdays)) + ")"
        return text


@dataclass(frozen=True)
class QuietHours:
    """A nightly span in which routine SMS must not go out (may cross midnight)."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def describe(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


def local_days(start: datetime, end: datetime, tz: ZoneInfo) -> Iterator[date]:
    """Every local date that can hold an instant of [start, end), with a day's margin."""
    day = start.astimezone(tz).date() - DAY
    last = end.astimezone(tz).date() + DAY
    while day <= last:
        yield day
        day += DAY


def instants(day: date, times: Iterable[time], tz: ZoneInfo) -> list[datetime]:
    """Turn a local day's wall-clock times into distinct UTC instants, in order.

    `fold=0` makes an ambiguous time (the repeated hour in autumn) mean its
    first occurrence, so it fires once, and makes a skipped time (the missing
    hour in spring) land after the gap, so it is not lost; a skipped slot that
    lands on another slot's instant merges with it rather than firing twice.
    """
    seen = {datetime.combine(day, t, tzinfo=tz).astimezone(UTC) for t in times}
    return sorted(seen)
