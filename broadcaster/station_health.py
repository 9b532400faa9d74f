"""Station health from what stations did: when last seen, and when they were away.

Pure: the times of heartbeats and polls come in, states and periods go out.
A station is `online` while it was seen within `late_after`, `late` until
`offline_after`, then `offline` (also when never seen at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class StationState(StrEnum):
    ONLINE = "online"
    LATE = "late"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Thresholds:
    late_after: timedelta
    offline_after: timedelta


@dataclass(frozen=True)
class Away:
    """A stretch with no heartbeat for longer than the offline threshold."""

    since: datetime
    until: datetime

    @property
    def seconds(self) -> float:
        return (self.until - self.since).total_seconds()


def state_of(last_seen: datetime | None, now: datetime, limits: Thresholds) -> StationState:
    if last_seen is None or now - last_seen >= limits.offline_after:
        return StationState.OFFLINE
    if now - last_seen >= limits.late_after:
        return StationState.LATE
    return StationState.ONLINE


def last_seen(*moments: datetime | None) -> datetime | None:
    """The latest of a station's heartbeat and poll times."""
    return max((m for m in moments if m is not None), default=None)


def away_periods(
    beats: Sequence[datetime],
    start: datetime,
    end: datetime,
    limits: Thresholds,
    before: datetime | None = None,
) -> list[Away]:
    """The stretches within [start, end) a station was offline, from its heartbeat times.

    `before` is its last heartbeat before `start` (None when there was none in
    reach, which counts it away from `start`). A stretch is counted from the
    last beat, so it says how long the centre heard nothing.
    """
    found = []
    previous = before if before is not None else start
    for beat in [*sorted(b for b in beats if start <= b < end), end]:
        if beat - previous >= limits.offline_after:
            found.append(Away(max(previous, start), beat))
        previous = beat
    return found
