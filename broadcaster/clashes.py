"""Find what in a plan would not air, and what clashes: `broadcaster schedule check`. Pure.

What would not air comes from the playlist builder itself (`audio.playlist`):
every commune's day is laid out exactly as the publisher lays it out (chime,
gaps, priorities, languages, the next slot's start), so what the check accepts
is what airs. Communes hearing the same occurrences in the same languages
share one layout, as they do when publishing.

Warnings, aggregated over days and communes so one bad time reads as one
line: two emergency items at once in one commune (a station airs one thing at
a time, and Circular 39 says emergencies air at once), and a van, SMS or task
occurrence whose declared length runs into the programme's next one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from broadcaster.areas import Area, AreaKind, AreaRegistry
from broadcaster.audio.library import Library
from broadcaster.audio.playlist import SLOT_CHANNELS, playlist, van_rounds, with_recordings
from broadcaster.occurrence import Channel, Occurrence, Priority


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
            return (
                f"level {self.level}: emergency items {self.first!r} and {self.second!r} "
                f"overlap at {self.time} {where}"
            )
        return (
            f"level {self.level}: {self.first!r} at {self.time} lasts {minutes} min and runs "
            f"into {self.second!r} {where}"
        )


@dataclass(frozen=True)
class Drop:
    """A planned item that one slot leaves out, and the stations whose slot it is."""

    programme: str
    item: str  # clip id, relay name
    at: datetime  # the slot's start (UTC)
    next_slot: datetime | None
    reason: str
    stations: frozenset[str]


@dataclass(frozen=True)
class Layout:
    """How to lay out slots, as the publisher does."""

    library: Library
    chime: str
    gap: float
    van_round_seconds: float


def find_drops(
    occurrences: Sequence[Occurrence],
    registry: AreaRegistry,
    layout: Layout,
    tz: ZoneInfo,
) -> list[Drop]:
    """Lay out every station's days in the plan; list each item a slot would leave out."""
    occurrences = with_recordings(occurrences, layout.library)
    days = sorted({o.at.astimezone(tz).date() for o in occurrences})
    by_area: dict[str, list[Occurrence]] = defaultdict(list)
    for occ in occurrences:
        by_area[occ.area].append(occ)
    found: dict[tuple[str, str, datetime, datetime | None, str], set[str]] = defaultdict(set)
    shared: dict[Hashable, list[tuple[str, str, datetime, datetime | None, str]]] = {}
    for area in registry.all():
        if area.kind is AreaKind.COMMUNE and area.station is not None:
            covering = [a.code for a in registry.ancestors(area.code)]
            mine = [
                o
                for c in (area.code, *covering)
                for o in by_area.get(c, ())
                if o.channel in SLOT_CHANNELS
            ]
            key: Hashable = (area.languages, tuple(_signature(o) for o in mine))
            if key not in shared:
                shared[key] = _commune_drops(area, days, mine, covering, layout, tz)
            station = area.station.code
        elif area.kind is AreaKind.DISTRICT:
            vans = [o for o in by_area.get(area.code, ()) if o.channel is Channel.VAN]
            key = ("van", area.code)
            shared[key] = _van_drops(
                area, registry.communes_under(area.code), days, vans, layout, tz
            )
            station = f"van-{area.code}"
        else:
            continue
        for drop in shared[key]:
            found[drop].add(station)
    return [
        Drop(programme, item, at, following, reason, frozenset(stations))
        for (programme, item, at, following, reason), stations in found.items()
    ]


def _commune_drops(
    commune: Area,
    days: Iterable[date],
    occurrences: Sequence[Occurrence],
    covering: Sequence[str],
    layout: Layout,
    tz: ZoneInfo,
) -> list[tuple[str, str, datetime, datetime | None, str]]:
    return [
        (
            d.programme,
            d.item,
            slot.start.astimezone(UTC),
            slot.end.astimezone(UTC) if slot.end else None,
            d.reason,
        )
        for day in days
        for slot in playlist(
            commune,
            day,
            occurrences,
            layout.library,
            tz=tz,
            chime=layout.chime,
            gap=layout.gap,
            covering=covering,
        )
        for d in slot.dropped
    ]


def _van_drops(
    district: Area,
    route: Sequence[Area],
    days: Iterable[date],
    occurrences: Sequence[Occurrence],
    layout: Layout,
    tz: ZoneInfo,
) -> list[tuple[str, str, datetime, datetime | None, str]]:
    return [
        (d.programme, d.item, rnd.start.astimezone(UTC), None, d.reason)
        for day in days
        for rnd in van_rounds(
            district,
            route,
            day,
            occurrences,
            layout.library,
            tz=tz,
            round_seconds=layout.van_round_seconds,
            chime=layout.chime,
            gap=layout.gap,
        )
        for d in rnd.dropped
    ]


def _signature(occ: Occurrence) -> Hashable:
    return (occ.programme, occ.channel, occ.at, occ.priority, occ.content, occ.duration)


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
            if occurrence.channel not in SLOT_CHANNELS:  # speakers: see find_drops
                lanes[(occurrence.programme, commune)].append(occurrence)
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
    return [
        Clash(kind, level, first, second, time, length, len(areas))
        for (kind, level, first, second, time, length), areas in sorted(found.items())
    ]


def _overlaps(at: datetime, length: timedelta, following: datetime, kind: str) -> bool:
    if kind == "emergency-overlap":
        return following < at + length or following == at
    return following < at + length
