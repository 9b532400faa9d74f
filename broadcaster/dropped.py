"""Which planned occurrences the published playlists left out, for the timeline's red.

The publisher writes, in each station's day document, what every slot (and
van round) dropped and why: an item that did not fit before the next slot,
or had no clip valid that day. `dropped_keys` maps those entries back to the
plan's occurrences: the same programme, in the station's commune (or an area
above it) or the van's district, at a time inside that slot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from broadcaster.areas import AreaRegistry
from broadcaster.planner import Occurrence

if TYPE_CHECKING:
    from broadcaster.config import Settings

Key = tuple[str, str, datetime]


def dropped_keys(
    documents: Iterable[tuple[str, Mapping[str, Any]]],
    occurrences: Iterable[Occurrence],
    registry: AreaRegistry,
) -> set[Key]:
    """Keys of the occurrences that `(area code, day document)` pairs report dropped. Pure."""
    by_programme: dict[str, list[Occurrence]] = defaultdict(list)
    for o in occurrences:
        by_programme[o.programme].append(o)
    found: set[Key] = set()
    for area, document in documents:
        reach = {area, *(a.code for a in registry.ancestors(area))} if area in registry else {area}
        slots = sorted(document.get("slots", ()), key=lambda s: datetime.fromisoformat(s["start"]))
        for i, slot in enumerate(slots):
            programmes = {d.get("programme") for d in slot.get("dropped", ())}
            if not programmes:
                continue
            start = datetime.fromisoformat(slot["start"])
            end = _end(slot, slots[i + 1] if i + 1 < len(slots) else None)
            for programme in programmes:
                found |= {o.key for o in by_programme.get(programme, ())
                          if o.area in reach and start <= o.at < end}
    return found


def _end(slot: Mapping[str, Any], following: Mapping[str, Any] | None) -> datetime:
    """A slot ends at its stated end, else where the next one starts (van rounds), else
    a day later."""
    if slot.get("end"):
        return datetime.fromisoformat(slot["end"])
    if following is not None:
        return datetime.fromisoformat(following["start"])
    return datetime.fromisoformat(slot["start"]) + timedelta(days=1)


def published_dropped(settings: Settings, registry: AreaRegistry, occurrences: Iterable[Occurrence],
                      days: Iterable[date]) -> set[Key]:
    """Read every station's published day documents for `days` and map their drops."""
    from broadcaster.audio.publish import day_document, publisher, stations

    pub = publisher(settings)
    documents = []
    for code, area in stations(registry).items():
        for day in days:
            document = day_document(pub, code, day)
            if document is not None:
                documents.append((area.code, document))
    return dropped_keys(documents, occurrences, registry)
