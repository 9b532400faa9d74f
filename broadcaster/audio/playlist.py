"""Turn a commune's planned occurrences into the slots its station airs (pure).

A slot opens with the chime, then airs its items by priority (emergency,
priority, normal: Circular 39/2020), each in Vietnamese and then in the
commune's other languages where the library holds a variant. A slot never
runs into the next one: what does not fit is returned as `Dropped` so the
shell can log it. An emergency that arrives while a slot airs joins that
slot at its head and the slot airs again from the moment of the emergency.

This is the one slot arithmetic: the publisher, `schedule check` and `plan`
all lay slots out here (`clashes.find_drops`), so what the check accepts is
what airs. A relay is one entry of its planned length with its stream and
fallback clip; a recorded bulletin (`with_recordings`) replaces one relay.

Van rounds are per district: each round is a loop of the van programme in
every language of the communes on its route, repeated to fill the round.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum

from broadcaster.areas import Area
from broadcaster.audio.library import Clip, ClipKind, Library
from broadcaster.occurrence import Channel, Clips, Occurrence, Priority, Relay

SLOT_CHANNELS = frozenset({Channel.LOUDSPEAKER, Channel.RELAY})
DEFAULT_RELAY = timedelta(minutes=30)
MAIN_LANGUAGE = "vi"


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
    relay: Relay | None = None
    fallback: Clip | None = None  # a relay's clip for when its stream fails


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
    languages = _languages(commune.languages)
    groups = _group(mine, languages, library, day, gap, chime)
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
    occurrences: Sequence[Occurrence],
    languages: Sequence[str],
    library: Library,
    day: date,
    gap: float,
    chime: str,
) -> list[tuple[datetime, list[Occurrence]]]:
    """Gather occurrences into slots; an emergency inside a running slot restarts it."""
    groups: list[tuple[datetime, list[Occurrence]]] = []
    for occ in occurrences:
        if groups and groups[-1][0] == occ.at:
            groups[-1][1].append(occ)
            continue
        if groups and occ.priority is Priority.EMERGENCY:
            start, items = groups[-1]
            entries, _ = _fill(items, languages, library, day, start, None, chime, gap)
            if occ.at < start + timedelta(seconds=_length(entries)):
                groups[-1] = (occ.at, [occ, *items])
                continue
        groups.append((occ.at, [occ]))
    return groups


def _length(entries: Sequence[Entry]) -> float:
    return entries[-1].offset + entries[-1].duration if entries else 0.0


def _fill(
    items: Sequence[Occurrence],
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
        entries.append(replace(candidate, offset=at))
        offset = at + candidate.duration
    return tuple(entries), tuple(dropped)


def _candidates(
    items: Sequence[Occurrence],
    languages: Sequence[str],
    library: Library,
    day: date,
) -> Iterable[tuple[Entry, Dropped | None]]:
    """Expand items into entries in airing order, or say which item has no clip."""
    for occ in items:
        match occ.content:
            case Relay() as relay:
                fallback = _fallback(relay, languages, library, day)
                seconds = (occ.duration or DEFAULT_RELAY).total_seconds()
                yield (
                    Entry(
                        EntryKind.RELAY,
                        0.0,
                        seconds,
                        occ.priority,
                        occ.programme,
                        relay=relay,
                        fallback=fallback,
                    ),
                    None,
                )
            case Clips(clips):
                yield from _clip_entries(
                    occ.programme, clips, occ.priority, languages, library, day
                )
            case _:
                yield (
                    Entry(EntryKind.CLIP, 0, 0, occ.priority),
                    Dropped(
                        occ.programme,
                        occ.content.kind,
                        None,
                        occ.priority,
                        f"{occ.content.kind} content cannot air on a loudspeaker",
                    ),
                )


def _clip_entries(
    programme: str,
    clips: Sequence[str],
    priority: Priority,
    languages: Sequence[str],
    library: Library,
    day: date,
) -> Iterable[tuple[Entry, Dropped | None]]:
    for clip_id in clips:
        variants = [c for lang in languages if (c := library.variant(clip_id, lang, day))]
        if not variants:
            yield (
                Entry(EntryKind.CLIP, 0, 0, priority),
                Dropped(
                    programme,
                    clip_id,
                    None,
                    priority,
                    "no clip in the library is valid that day in the commune's languages",
                ),
            )
        for clip in variants:
            yield Entry(EntryKind.CLIP, 0.0, clip.duration, priority, programme, clip), None


def _fallback(relay: Relay, languages: Sequence[str], library: Library, day: date) -> Clip | None:
    """The relay's fallback clip in the first of the commune's languages that has one."""
    if relay.fallback is None:
        return None
    found = (library.variant(relay.fallback, lang, day) for lang in languages)
    return next((c for c in found if c is not None), None)


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
            if o.channel is Channel.VAN
            and o.area == district.code
            and o.at.astimezone(tz).date() == day
        ),
        key=lambda o: o.at,
    )
    rounds: list[VanRound] = []
    ids: set[str] = set()
    for occ in vans:
        loop, dropped = _fill([occ], languages, library, day, occ.at, None, chime, gap)
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


def with_recordings(occurrences: Iterable[Occurrence], library: Library) -> list[Occurrence]:
    """Air a district's recorded bulletin instead of the live relay it was recorded for.

    A recording (`audio import FILE --for PROGRAMME --at DATE TIME`) names a
    programme and an instant; the relay occurrence of that programme at that
    instant airs it as an ordinary clip, and every other occurrence is left as is.
    """
    recorded = {
        (c.for_programme, c.airs_at): c.id
        for c in library.clips
        if c.kind is ClipKind.RECORDING and c.airs_at is not None
    }
    if not recorded:
        return list(occurrences)
    out = []
    for occ in occurrences:
        clip_id = recorded.get((occ.programme, occ.at)) if isinstance(occ.content, Relay) else None
        out.append(occ if clip_id is None else replace(occ, content=Clips((clip_id,))))
    return out


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
    item = entry.clip.id if entry.clip else (entry.relay.name if entry.relay else "")
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
