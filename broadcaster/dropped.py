"""Which planned occurrences the slot layout leaves out: the timeline's red, `plan`'s marks.

`clashes.find_drops` lays out every station's slots with the publisher's one
layout function and lists what a slot would leave out (no room before the
next slot, or no clip valid that day), per station. `drops_by_occurrence`
maps those back to the plan's occurrences, whose area may be the commune or
an area above it; `slot_layout` builds the layout as the publisher does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from broadcaster.areas import AreaRegistry

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from broadcaster.clashes import Drop, Layout
    from broadcaster.config import Settings
    from broadcaster.occurrence import Occurrence

Key = tuple[str, str, datetime]


def slot_layout(settings: Settings, engine: Engine | None) -> Layout:
    """How the publisher lays out slots: the library with the durations it airs (those
    normalised so far, by any node; the catalogue's for the rest), the chime, the gap.
    Raises `LibraryError` for a broken library."""
    from broadcaster.audio.publish import aired_durations
    from broadcaster.audio.sharing import node_library
    from broadcaster.clashes import Layout

    audio = settings.audio
    library = aired_durations(node_library(settings, engine, fetch=False), settings, engine)
    return Layout(library, audio.chime, audio.gap_seconds, audio.van_round_minutes * 60)


def drops_by_occurrence(drops: Iterable[Drop], registry: AreaRegistry) -> dict[Key, list[Drop]]:
    """Index drops by the occurrences they come from: programme, instant and each area
    at or above a dropping station's commune (an occurrence may name the district),
    keeping for each only the stations under its area. Pure."""
    communes = {a.station.code: a.code for a in registry.all() if a.station}
    found: dict[Key, list[Drop]] = {}
    for drop in drops:
        under: dict[str, set[str]] = {}
        for station in drop.stations:
            commune = communes.get(station, station.removeprefix("van-"))
            for area in (commune, *(a.code for a in registry.ancestors(commune))):
                under.setdefault(area, set()).add(station)
        for area, stations in under.items():
            found.setdefault((drop.programme, area, drop.at), []).append(
                replace(drop, stations=frozenset(stations))
            )
    return found


def planned_drops(
    settings: Settings,
    registry: AreaRegistry,
    occurrences: list[Occurrence],
    engine: Engine | None,
) -> dict[Key, list[Drop]]:
    """Lay out the stations' slots for these occurrences; what each occurrence loses."""
    from broadcaster.clashes import find_drops

    found = find_drops(occurrences, registry, slot_layout(settings, engine), settings.tz)
    return drops_by_occurrence(found, registry)
