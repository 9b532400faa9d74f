"""What a station airs and when: its published days as cues, and the choice of cue now.

Pure: day documents (as parsed JSON) and the time come in, frozen values go
out. A day document comes from the network, so it is checked here once and
a bad one refused whole with the reason; the agent then keeps the last good
one. The centre uses `item_id` too, so its as-run gaps name items exactly
as agents report them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

OVERRUN = timedelta(minutes=5)  # how long past its slot's end a delayed item may still start
MAX_SLOTS = 500
MAX_ITEMS = 500
EMERGENCY = "emergency"


class BadDay(ValueError):
    """A day document that does not have the published shape."""


@dataclass(frozen=True)
class Source:
    """A playable file or stream: where it is, its hash if a file, how long it lasts."""

    url: str
    sha256: str | None
    duration: float
    name: str


@dataclass(frozen=True)
class Cue:
    """One item of one slot, placed in time: the unit an agent plays and reports."""

    key: str
    day: str
    slot: str
    item: str
    programme: str | None
    priority: str
    kind: str
    at: datetime
    deadline: datetime
    source: Source | None
    fallback: Source | None = None

    @property
    def emergency(self) -> bool:
        return self.priority == EMERGENCY

    @property
    def live(self) -> bool:
        """A relay: a stream aired for its length, not a file played to its end."""
        return self.kind == "relay"


def item_id(item: Mapping[str, Any]) -> str:
    """Name an item as agents report it and the centre's gaps list it."""
    if item.get("clip"):
        language = item.get("language")
        return f"{item['clip']}.{language}" if language else str(item["clip"])
    return str(item.get("programme") or item.get("kind") or "item")


def cues(days: Iterable[Mapping[str, Any]], overrun: timedelta = OVERRUN) -> tuple[Cue, ...]:
    """Turn day documents into cues in airing order.

    An item may start until its slot's end plus `overrun` (an emergency or a
    late start pushes the rest of a slot on), but never after the next
    slot has begun: that slot's own items come first.
    """
    slots = sorted(
        ((day, slot) for doc in days for day, slot in _slots(doc)),
        key=lambda pair: _time(pair[1], "start"),
    )
    found: list[Cue] = []
    for n, (day, slot) in enumerate(slots):
        start = _time(slot, "start")
        end = start + timedelta(seconds=_number(slot, "duration"))
        deadline = end + overrun
        if n + 1 < len(slots):
            deadline = max(end, min(deadline, _time(slots[n + 1][1], "start")))
        found += _slot_cues(day, slot, deadline)
    return tuple(found)


def choose(cues: Sequence[Cue], now: datetime, done: Collection[str]) -> Cue | None:
    """The cue to air now: a due emergency first, else the earliest due cue not yet aired."""
    due = [c for c in cues if c.key not in done and c.at <= now < c.deadline]
    urgent = [c for c in due if c.emergency]
    return next(iter(urgent or due), None)


def carried_over(cue: Cue, cues: Sequence[Cue], done: Collection[str], now: datetime) -> Cue | None:
    """The same item in a republished day, if still to air: a notice may open a slot
    before it and move it there, and what plays should go on, not start again."""
    return next(
        (
            c
            for c in cues
            if c.day == cue.day
            and c.item == cue.item
            and c.source == cue.source
            and c.key not in done
            and now < c.deadline
        ),
        None,
    )


def next_due(cues: Sequence[Cue], now: datetime, done: Collection[str]) -> datetime | None:
    """When the next cue not yet aired falls due, to sleep until then."""
    return min((c.at for c in cues if c.key not in done and c.at > now), default=None)


def horizon(days: Iterable[Mapping[str, Any]]) -> str | None:
    """The last day the cache holds a document for."""
    return max((str(d.get("date")) for d in days if d.get("date")), default=None)


def sources(cues: Iterable[Cue]) -> dict[str, Source]:
    """Every file the cues need, by hash, so the cache fetches each once."""
    files = [s for c in cues for s in (c.source, c.fallback) if s is not None and s.sha256]
    return {s.sha256: s for s in files if s.sha256}


def _slots(doc: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("slots"), list):
        raise BadDay("a day document is an object with a list of slots")
    day = doc.get("date")
    if not isinstance(day, str) or len(day) != 10:
        raise BadDay("a day document names its date as YYYY-MM-DD")
    if len(doc["slots"]) > MAX_SLOTS:
        raise BadDay(f"more than {MAX_SLOTS} slots in one day")
    for slot in doc["slots"]:
        if not isinstance(slot, Mapping) or not isinstance(slot.get("items"), list):
            raise BadDay("each slot is an object with a list of items")
        if len(slot["items"]) > MAX_ITEMS:
            raise BadDay(f"more than {MAX_ITEMS} items in one slot")
    return [(day, slot) for slot in doc["slots"]]


def _slot_cues(day: str, slot: Mapping[str, Any], deadline: datetime) -> list[Cue]:
    slot_id = _text(slot, "slot")
    start = _time(slot, "start")
    seen: dict[str, int] = {}
    found = []
    for item in slot["items"]:
        if not isinstance(item, Mapping):
            raise BadDay(f"slot {slot_id}: an item is not an object")
        name = item_id(item)
        seen[name] = seen.get(name, 0) + 1
        at = (
            _time(item, "air_time")
            if "air_time" in item
            else start + timedelta(seconds=_number(item, "offset"))
        )
        found.append(
            Cue(
                key=f"{day}/{slot_id}/{name}#{seen[name]}",
                day=day,
                slot=slot_id,
                item=name,
                programme=item.get("programme") if isinstance(item.get("programme"), str) else None,
                priority=str(item.get("priority", "normal")),
                kind=str(item.get("kind", "clip")),
                at=at,
                deadline=deadline,
                source=_source(item, name),
                fallback=_fallback(item.get("fallback")),
            )
        )
    return found


def _source(item: Mapping[str, Any], name: str) -> Source | None:
    url = item.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    sha = item.get("sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64 and _hex(sha)):
        raise BadDay(f"item {name}: sha256 is not 64 hex digits")
    return Source(url, sha, _number(item, "duration"), name)


def _fallback(value: Any) -> Source | None:
    """A relay's fallback: a clip item of its own (url, sha256, duration)."""
    if not isinstance(value, Mapping):
        return None
    return _source(value, item_id(value))


def _hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > 64:
        raise BadDay(f"{key} must be a short text")
    return value


def _number(obj: Mapping[str, Any], key: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 86400 * 2:
        raise BadDay(f"{key} must be a number of seconds, got {value!r}")
    return float(value)


def _time(obj: Mapping[str, Any], key: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(obj.get(key)))
    except ValueError:
        raise BadDay(f"{key} is not an ISO 8601 time: {obj.get(key)!r}") from None
    if moment.tzinfo is None:
        raise BadDay(f"{key} has no UTC offset: {obj.get(key)!r}")
    return moment
