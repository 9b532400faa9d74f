"""Turn a commune's planned occurrences into the slots its station airs (pure).

A slot opens with the chime, then airs its items by priority (emergency,
priority, normal: Circular 39/2020), each in Vietnamese and then in the
commune's other languages where the library holds a variant. A slot never
runs into the next one: what does not fit is returned as `Dropped` so the
shell can log it. An emergency that arrives while a slot airs joins that
slot at its head and the slot airs again from the moment of the emergency.

Van rounds are per district: each round is a loop of the van programme in
every language of the communes on its route, repeated to fill the round.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any, Protocol

from broadcaster.areas import Area
from broadcaster.audio.library import Clip, Library

SLOT_CHANNELS = frozenset({"loudspeaker", "relay"})
DEFAULT_RELAY = timedelta(minutes=30)
MAIN_LANGUAGE = "vi"


class Priority(StrEnum):
    NORMAL = "normal"
    PRIORITY = "priority"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        """Sort key: emergency airs first."""
        return {"emergency": 0, "priority": 1, "normal": 2}[self.value]


class Occurrence(Protocol):
    """What the planner hands over; only these fields are read here."""

    @property
    def programme(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def area(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def priority(self) -> str: ...
    @property
    def content(self) -> Any: ...
    @property
    def duration(self) -> timedelta | None: ...


class EntryKind(StrEnum):
    CHIME = "chime"
    CLIP = "clip"
    RELAY = "relay"


@dataclass(frozen=True)
class Entry:
    """One thing aired in a slot; `offset` counts seconds from the slot's start."""

    kind: EntryKind
    offset: float
    duration: float
    priority: Priority
    programme: str | None = None
    clip: Clip | None = None
    source: str | None = None


@dataclass(frozen=True)
class Dropped:
    """An item left out, with why: it did not fit, or no clip exists for it."""

    programme: str
    item: str
    language: str | None
    priority: Priority
    reason: str


@dataclass(frozen=True)
class Slot:
    """One playlist: what a station airs from `start`, finishing by `end` when known."""

    id: str
    start: datetime
    end: datetime | None
    entries: tuple[Entry, ...]
    dropped: tuple[Dropped, ...] = ()

    @property
    def duration(self) -> float:
        last = self.entries[-1] if self.entries else None
        return last.offset + last.duration if last else 0.0


@dataclass(frozen=True)
class VanRound:
    """One van round: a loop played `repeat` times while the van drives `route`."""

    id: str
    district: str
    start: datetime
    loop: tuple[Entry, ...]
    repeat: int
    route: tuple[str, ...]
    dropped: tuple[Dropped, ...] = ()

    @property
    def loop_duration(self) -> float:
        last = self.loop[-1] if self.loop else None
        return last.offset + last.duration if last else 0.0


@dataclass(frozen=True)
class _Item:
    occurrence: Occurrence
    priority: Priority


def playlist(
    commune: Area,
    day: date,
    occurrences: Iterable[Occurrence],
    library: Library,
    *,
    tz: tzinfo,
    chime: str = "chime",
    gap: float = 0.0,
    covering: Iterable[str] = (),
) -> list[Slot]:
    """Build the commune's slots starting on `day` (local to `tz`).

    `occurrences` may include other days: the first slot after `day` still
    bounds the last slot of `day`. `covering` adds area codes (the commune's
    district, province) whose loudspeaker occurrences the commune airs too.
    """
    areas = {commune.code, *covering}
    mine = sorted(
        (o for o in occurrences if o.channel in SLOT_CHANNELS and o.area in areas),
        key=lambda o: o.at,
    )
    groups = _group(mine, library, day, gap, chime)
    languages = _languages(commune.languages)
    slots: list[Slot] = []
    ids: set[str] = set()
    for i, (start, items) in enumerate(groups):
        if start.astimezone(tz).date() != day:
            continue
        end = groups[i + 1][0] if i + 1 < len(groups) else None
        slot_id = _unique_id(start.astimezone(tz).strftime("%H%M"), ids)
        entries, dropped = _fill(items, languages, library, day, start, end, chime, gap)
        slots.append(Slot(slot_id, start, end, entries, dropped))
    return slots


def _group(
    occurrences: Sequence[Occurrence], library: Library, day: date, gap: float, chime: str
) -> list[tuple[datetime, list[_Item]]]:
    """Gather occurrences into slots; an emergency inside a running slot restarts it."""
    groups: list[tuple[datetime, list[_Item]]] = []
    for occ in occurrences:
        _require_aware(occ.at, occ.programme)
        item = _Item(occ, Priority(occ.priority))
        if groups and groups[-1][0] == occ.at:
            groups[-1][1].append(item)
            continue
        if groups and item.priority is Priority.EMERGENCY:
            start, items = groups[-1]
            length = _planned_seconds(items, library, day, gap, chime)
            if occ.at < start + timedelta(seconds=length):
                groups[-1] = (occ.at, [item, *items])
                continue
        groups.append((occ.at, [item]))
    return groups


def _planned_seconds(
    items: Sequence[_Item], library: Library, day: date, gap: float, chime: str
) -> float:
    chime_clip = _first(library, chime, day)
    total = chime_clip.duration if chime_clip else 0.0
    for item in items:
        if item.occurrence.channel == "relay":
            total += gap + _relay_seconds(item.occurrence)
        for clip_id in clip_ids(item.occurrence.content):
            total += sum(
                gap + c.duration for c in library.clips if c.id == clip_id and c.valid_on(day)
            )
    return total


def _fill(
    items: Sequence[_Item],
    languages: Sequence[str],
    library: Library,
    day: date,
    start: datetime,
    end: datetime | None,
    chime: str,
    gap: float,
) -> tuple[tuple[Entry, ...], tuple[Dropped, ...]]:
    """Place entries in order until the slot is full; report everything left out."""
    capacity = (end - start).total_seconds() if end is not None else float("inf")
    ordered = sorted(items, key=lambda it: it.priority.rank)
    entries: list[Entry] = []
    dropped: list[Dropped] = []
    top = ordered[0].priority if ordered else Priority.NORMAL
    chime_clip = _first(library, chime, day)
    offset = 0.0
    if chime_clip is not None and chime_clip.duration <= capacity:
        entries.append(Entry(EntryKind.CHIME, 0.0, chime_clip.duration, top, clip=chime_clip))
        offset = chime_clip.duration
    for candidate, missing in _candidates(ordered, languages, library, day):
        if missing is not None:
            dropped.append(missing)
            continue
        at = offset + gap if entries else offset
        if at + candidate.duration > capacity:
            dropped.append(_as_dropped(candidate, "does not fit before the next slot"))
            continue
        entries.append(
            Entry(
                candidate.kind,
                at,
                candidate.duration,
                candidate.priority,
                candidate.programme,
                candidate.clip,
                candidate.source,
            )
        )
        offset = at + candidate.duration
    return tuple(entries), tuple(dropped)


def _candidates(
    items: Sequence[_Item],
    languages: Sequence[str],
    library: Library,
    day: date,
) -> Iterable[tuple[Entry, Dropped | None]]:
    """Expand items into entries in airing order, or say which item has no clip."""
    for item in items:
        occ = item.occurrence
        if occ.channel == "relay":
            yield (
                Entry(
                    EntryKind.RELAY,
                    0.0,
                    _relay_seconds(occ),
                    item.priority,
                    occ.programme,
                    source=relay_source(occ.content),
                ),
                None,
            )
            continue
        for clip_id in clip_ids(occ.content):
            variants = [c for lang in languages if (c := library.variant(clip_id, lang, day))]
            if not variants:
                yield (
                    Entry(EntryKind.CLIP, 0, 0, item.priority),
                    Dropped(
                        occ.programme,
                        clip_id,
                        None,
                        item.priority,
                        "no clip in the library is valid that day in the commune's languages",
                    ),
                )
            for clip in variants:
                yield (
                    Entry(EntryKind.CLIP, 0.0, clip.duration, item.priority, occ.programme, clip),
                    None,
                )


def van_rounds(
    district: Area,
    route: Sequence[Area],
    day: date,
    occurrences: Iterable[Occurrence],
    library: Library,
    *,
    tz: tzinfo,
    round_seconds: float,
    chime: str = "chime",
    gap: float = 0.0,
) -> list[VanRound]:
    """Build the district's van rounds for `day`: loop playlist plus the communes to visit."""
    languages = _languages(lang for commune in route for lang in commune.languages)
    vans = sorted(
        (
            o
            for o in occurrences
            if o.channel == "van" and o.area == district.code and o.at.astimezone(tz).date() == day
        ),
        key=lambda o: o.at,
    )
    rounds: list[VanRound] = []
    ids: set[str] = set()
    for occ in vans:
        _require_aware(occ.at, occ.programme)
        item = _Item(occ, Priority(occ.priority))
        loop, dropped = _fill([item], languages, library, day, occ.at, None, chime, gap)
        length = loop[-1].offset + loop[-1].duration + gap if loop else 0.0
        seconds = occ.duration.total_seconds() if occ.duration else round_seconds
        repeat = max(1, int(seconds // length)) if length else 0
        rounds.append(
            VanRound(
                _unique_id(occ.at.astimezone(tz).strftime("%H%M"), ids),
                district.code,
                occ.at,
                loop,
                repeat,
                tuple(c.code for c in route),
                dropped,
            )
        )
    return rounds


def clip_ids(content: Any) -> tuple[str, ...]:
    """Read the clip ids out of an occurrence's content, whichever shape the planner used."""
    if content is None:
        return ()
    if isinstance(content, str):
        return (content,)
    if isinstance(content, Mapping):
        return clip_ids(content.get("clips") or content.get("clip"))
    clips = getattr(content, "clips", None)
    if clips is not None:
        return clip_ids(clips)
    return tuple(str(c) for c in content)


def relay_source(content: Any) -> str:
    """Read a relay's live source (a URL or channel name) from its content."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        return str(content.get("source", ""))
    return str(getattr(content, "source", ""))


def _relay_seconds(occ: Occurrence) -> float:
    return (occ.duration or DEFAULT_RELAY).total_seconds()


def _first(library: Library, clip_id: str, day: date) -> Clip | None:
    return next((c for c in library.clips if c.id == clip_id and c.valid_on(day)), None)


def _languages(languages: Iterable[str]) -> list[str]:
    """Vietnamese first, then the others in the order given, each once."""
    ordered = [MAIN_LANGUAGE]
    for lang in languages:
        if lang not in ordered:
            ordered.append(lang)
    return ordered


def _as_dropped(entry: Entry, reason: str) -> Dropped:
    item = entry.clip.id if entry.clip else (entry.source or "")
    language = entry.clip.language if entry.clip else None
    return Dropped(entry.programme or "", item, language, entry.priority, reason)


def _unique_id(base: str, taken: set[str]) -> str:
    """Name a slot by its local start time; a repeated hour (DST fold) gets a suffix."""
    slot_id, n = base, 1
    while slot_id in taken:
        n += 1
        slot_id = f"{base}-{n}"
    taken.add(slot_id)
    return slot_id


def _require_aware(at: datetime, programme: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(
            f"occurrence of {programme!r} at {at}: naive datetime; times must carry a zone"
        )
