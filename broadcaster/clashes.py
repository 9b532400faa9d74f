"""Find clashes in a plan: what `broadcaster schedule check` warns about. Pure.

Two kinds: two emergency items at once in one commune (a station can air only
one at a time, and Circular 39 says emergencies air at once), and a slot that
runs into the next one on the same speakers (loudspeaker and relay share a
commune's speakers; van, SMS and task slots clash only with themselves).
Warnings are aggregated over days and communes so one bad time reads as one line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from broadcaster.areas import AreaRegistry
from broadcaster.planner import Occurrence
from broadcaster.programmes import Channel, Priority

_SPEAKERS = (Channel.LOUDSPEAKER, Channel.RELAY)


@dataclass(frozen=True)
class Clash:
    """One aggregated warning: `first` at `time` runs into `second` in `areas` areas."""

    kind: str  # "emergency-overlap" or "slot-overrun"
    level: str
    first: str
    second: str
    time: str  # local HH:MM of the first item
    duration: timedelta
    areas: int

    def describe(self) -> str:
        minutes = int(self.duration.total_seconds() // 60)
        where = f"in {self.areas} area{'s' if self.areas != 1 else ''}"
        if self.kind == "emergency-overlap":
            return (f"level {self.level}: emergency items {self.first!r} and {self.second!r} "
                    f"overlap at {self.time} {where}")
        return (f"level {self.level}: {self.first!r} at {self.time} lasts {minutes} min and runs "
                f"into {self.second!r} {where}")


def find_clashes(
    occurrences: Iterable[Occurrence], registry: AreaRegistry, tz: ZoneInfo
) -> list[Clash]:
    """List clashes in a plan, one per (kind, level, pair of programmes, local time)."""
    lanes: dict[tuple[str, str], list[Occurrence]] = defaultdict(list)
    communes: dict[str, list[str]] = {}
    for occurrence in occurrences:
        if occurrence.area not in communes:
            communes[occurrence.area] = [a.code for a in registry.communes_under(occurrence.area)]
        for commune in communes[occurrence.area]:
            if occurrence.priority is Priority.EMERGENCY:
                lanes[("emergency", commune)].append(occurrence)
            lane = "speakers" if occurrence.channel in _SPEAKERS else occurrence.programme
            lanes[(lane, commune)].append(occurrence)
    found: dict[tuple[str, str, str, str, str, timedelta], set[str]] = defaultdict(set)
    for (lane, commune), items in lanes.items():
        kind = "emergency-overlap" if lane == "emergency" else "slot-overrun"
        items.sort(key=lambda o: o.at)
        for current, following in zip(items, items[1:], strict=False):
            length = current.duration or timedelta(0)
            if _overlaps(current.at, length, following.at, kind):
                local = current.at.astimezone(tz).strftime("%H:%M")
                key = (kind, current.level, current.programme, following.programme, local, length)
                found[key].add(commune)
    return [Clash(kind, level, first, second, time, length, len(areas))
            for (kind, level, first, second, time, length), areas in sorted(found.items())]


def _overlaps(at: datetime, length: timedelta, following: datetime, kind: str) -> bool:
    if kind == "emergency-overlap":
        return following < at + length or following == at
    return following < at + length
