"""Planned against aired: which published items no station report says went out.

Pure: the station's cues (from its published days, the same function its
agent plays them with) and its reports come in; the gaps go out. An item
counts as aired when a report names its slot and item with a finished
event (or a plain player's report with an end time); an item planned twice
in one slot needs two such reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from broadcaster.station.plan import Cue


@dataclass(frozen=True)
class Aired:
    """What of a report the comparison needs."""

    day: str | None
    slot: str | None
    item: str


@dataclass(frozen=True)
class Gap:
    station: str
    day: str
    slot: str
    item: str
    programme: str | None
    kind: str
    at: datetime


def gaps(
    station: str, planned: Sequence[Cue], aired: Iterable[Aired], now: datetime, day: str
) -> list[Gap]:
    """Items of `day` whose air time has passed with no report of airing, in order."""
    done = Counter((a.slot, a.item) for a in aired if a.day in (None, day))
    found = []
    for cue in planned:
        if cue.day != day or not passed(cue, now):
            continue
        if done[(cue.slot, _aired_as(cue))] > 0:
            done[(cue.slot, _aired_as(cue))] -= 1
            continue
        if cue.fallback is not None and done[(cue.slot, cue.fallback.name)] > 0:
            done[(cue.slot, cue.fallback.name)] -= 1
            continue
        found.append(Gap(station, cue.day, cue.slot, cue.item, cue.programme, cue.kind, cue.at))
    return found


def _aired_as(cue: Cue) -> str:
    return cue.source.name if cue.source is not None else cue.item


def passed(cue: Cue, now: datetime) -> bool:
    """Whether a cue should have ended by `now`."""
    length = cue.source.duration if cue.source else 0.0
    return cue.at + timedelta(seconds=length) <= now
