"""What a schedule edit changes for the public, and the limits it must keep: pure.

A schedule file is written by one person; what it sends to the public must
be accepted by a second account. Programmes that reach the public on their
own — any SMS programme, and any programme of emergency priority — run only
in the form an approver accepted (`effective`); every other programme, and
the removal of any programme, applies as soon as the files are reloaded.
`review` says what an approval would change, with the SMS each level sends
a day and what that costs; `floor_problems` refuses cadences that send more
often than a channel's floor (`[sms] min_interval`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from broadcaster.areas import AreaRegistry
from broadcaster.cadence import Cadence
from broadcaster.occurrence import Channel, Priority
from broadcaster.programmes import Programme, Trigger

DAY_SECONDS = 86400


def needs_approval(programme: Programme) -> bool:
    """Whether a programme reaches the public on its own: SMS, or emergency priority."""
    return programme.channel is Channel.SMS or programme.priority is Priority.EMERGENCY


def same(a: Programme, b: Programme) -> bool:
    """Whether two programmes are one definition (the file they came from aside)."""
    return replace(a, file=Path()) == replace(b, file=Path())


def effective(
    approved: Sequence[Programme] | None, current: Sequence[Programme]
) -> tuple[tuple[Programme, ...], tuple[str, ...]]:
    """The programmes to run now, and the ids held back awaiting approval.

    A programme needing approval runs as the files say only if an approver
    accepted exactly that; if an earlier form was accepted, that form keeps
    running; if none was, it does not run. Removals apply at once.
    """
    accepted = {p.id: p for p in approved or ()}
    running: list[Programme] = []
    held: list[str] = []
    for programme in current:
        before = accepted.get(programme.id)
        if not needs_approval(programme) or (before is not None and same(before, programme)):
            running.append(programme)
            continue
        held.append(programme.id)
        if before is not None and needs_approval(before):
            running.append(before)
    return tuple(running), tuple(held)


@dataclass(frozen=True)
class LevelLoad:
    """The SMS that the scheduled programmes send in one day at one level of a ladder."""

    ladder: str
    level: str
    blasts: int
    messages: int
    parts: int
    cost: float

    def as_json(self) -> dict[str, object]:
        return {
            "ladder": self.ladder,
            "level": self.level,
            "blasts": self.blasts,
            "messages": self.messages,
            "parts": self.parts,
            "cost": round(self.cost, 2),
        }


def sms_load(
    programmes: Iterable[Programme],
    registry: AreaRegistry,
    recipients: Mapping[str, Mapping[str, int]],
    prices: Mapping[str, float],
    parts_of: Mapping[str, int],
) -> list[LevelLoad]:
    """Count, per ladder and level, the SMS blasts, messages, parts and their cost a day.

    `recipients` is subscribers per commune and carrier, `prices` the price of
    one part per carrier, `parts_of` the parts of each programme's text. A day
    counts every time of the cadence (weekday and date limits aside: the
    most a day can send).
    """
    totals: dict[tuple[str, str], list[float]] = {}
    for programme in programmes:
        if programme.channel is not Channel.SMS:
            continue
        for level in programme.cadences:
            totals.setdefault((programme.ladder, level), [0, 0, 0, 0.0])
        if programme.trigger is not Trigger.SCHEDULE:
            continue
        per_carrier = _reach(programme.areas, registry, recipients)
        parts = parts_of.get(programme.id, 1)
        for level, cadence in programme.cadences.items():
            sends = len(cadence.times) if cadence else 0
            row = totals[(programme.ladder, level)]
            row[0] += sends
            row[1] += sends * sum(per_carrier.values())
            row[2] += sends * sum(per_carrier.values()) * parts
            row[3] += sends * parts * sum(n * prices.get(c, 0.0) for c, n in per_carrier.items())
    return [
        LevelLoad(ladder, level, int(b), int(m), int(p), c)
        for (ladder, level), (b, m, p, c) in totals.items()
    ]


def _reach(
    areas: Iterable[str], registry: AreaRegistry, recipients: Mapping[str, Mapping[str, int]]
) -> dict[str, int]:
    communes = {c.code for code in areas for c in registry.communes_under(code)}
    out: dict[str, int] = {}
    for commune in communes:
        for carrier, n in recipients.get(commune, {}).items():
            out[carrier] = out.get(carrier, 0) + n
    return out


@dataclass(frozen=True)
class Review:
    """What accepting the current files would change for the public."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    before: tuple[LevelLoad, ...]
    after: tuple[LevelLoad, ...]

    @property
    def pending(self) -> bool:
        """Whether anything awaits an approver (removals never do)."""
        return bool(self.added or self.changed)

    def as_json(self) -> dict[str, object]:
        return {
            "added": list(self.added),
            "changed": list(self.changed),
            "removed": list(self.removed),
            "sms_a_day": [
                {**a.as_json(), "before": b.as_json() if b else None}
                for a, b in _pair(self.after, self.before)
            ],
        }


def review(
    approved: Sequence[Programme] | None,
    current: Sequence[Programme],
    load: Callable[[Sequence[Programme]], list[LevelLoad]],
) -> Review:
    """Compare the accepted programmes with the files: the public-facing ones added,
    changed or removed, and the SMS a day per level before and after."""
    accepted = {p.id: p for p in approved or ()}
    now = {p.id: p for p in current}
    added = tuple(i for i, p in now.items() if needs_approval(p) and i not in accepted)
    changed = tuple(
        i
        for i, p in now.items()
        if needs_approval(p) and i in accepted and not same(accepted[i], p)
    )
    removed = tuple(i for i, p in accepted.items() if needs_approval(p) and i not in now)
    return Review(
        added, changed, removed, tuple(load(list(accepted.values()))), tuple(load(list(current)))
    )


def _pair(
    after: Sequence[LevelLoad], before: Sequence[LevelLoad]
) -> list[tuple[LevelLoad, LevelLoad | None]]:
    old = {(b.ladder, b.level): b for b in before}
    return [(a, old.get((a.ladder, a.level))) for a in after]


def floor_problems(
    programmes: Iterable[Programme], floors: Mapping[Channel, timedelta]
) -> list[str]:
    """One problem per programme level whose cadence sends more often than its channel's
    floor, naming the file, the programme and the key."""
    problems = []
    for programme in programmes:
        floor = floors.get(programme.channel)
        if floor is None or programme.trigger is not Trigger.SCHEDULE:
            continue
        seen: set[int] = set()
        for level, cadence in programme.cadences.items():
            if cadence is None or id(cadence) in seen:
                continue
            seen.add(id(cadence))
            gap = closest_gap(cadence)
            if gap is not None and gap < floor:
                problems.append(
                    f'{programme.file}: programme {programme.id!r}: levels."{level}": sends '
                    f"{_span(gap)} apart at the closest (every/times/per_day), more often than "
                    f"the {programme.channel.value} floor of {_span(floor)} "
                    f"([{programme.channel.value}] min_interval)"
                )
    return problems


def closest_gap(cadence: Cadence) -> timedelta | None:
    """The shortest time between two sends of a cadence, across midnight too."""
    seconds = sorted(t.hour * 3600 + t.minute * 60 + t.second for t in cadence.times)
    if len(seconds) < 2:
        return None
    gaps = [b - a for a, b in zip(seconds, seconds[1:], strict=False)]
    gaps.append(seconds[0] + DAY_SECONDS - seconds[-1])
    return timedelta(seconds=min(gaps))


def _span(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    h, m, s = seconds // 3600, seconds % 3600 // 60, seconds % 60
    return "".join(f"{n}{u}" for n, u in ((h, "h"), (m, "m"), (s, "s")) if n) or "0s"
