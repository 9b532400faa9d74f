"""Plan: programmes + the level timeline + an interval → occurrences. Pure.

Speed comes from sharing: areas whose level timeline is the same (every commune
that inherits its district's level) share one computed list of instants per
programme, and a local day's instants are computed once per set of times of
day; only the final fan-out to areas is per area. Planning 10,000 communes ×
5 programmes × 2 days stays well under a second (see bench/plan.py).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from broadcaster.areas import AreaRegistry
from broadcaster.cadence import instants, local_days
from broadcaster.levels import LevelChange
from broadcaster.occurrence import Occurrence, SmsText
from broadcaster.programmes import Programme, Trigger

Segments = tuple[tuple[datetime, str], ...]  # (from, level); each runs to the next or the end


def plan(
    programmes: Iterable[Programme],
    changes: Iterable[LevelChange],
    registry: AreaRegistry,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
) -> list[Occurrence]:
    """List every occurrence in [start, end), ordered by time, then programme order.

    `changes` is the level history (any order); levels before `start` set the
    starting point and changes inside the interval switch cadences at their
    instant. `tz` is the zone whose wall clock the cadences are written in.
    """
    _require_aware(start, "start")
    _require_aware(end, "end")
    timeline = _Timeline(changes, registry, start, end)
    days = _DayInstants(tz)
    buckets: dict[datetime, list[tuple[Programme, tuple[str, ...], str, timedelta | None]]]
    buckets = defaultdict(list)
    for programme in programmes:
        if programme.trigger is not Trigger.SCHEDULE:
            continue
        for segments, areas in _group_by_timeline(programme, timeline).items():
            for at, level, duration in _instants(programme, segments, end, days):
                buckets[at].append((programme, areas, level, duration))
    occurrences: list[Occurrence] = []
    append = occurrences.append
    for at in sorted(buckets):
        for programme, areas, level, duration in buckets[at]:
            for area in areas:
                append(
                    Occurrence(
                        programme.id,
                        programme.channel,
                        area,
                        at,
                        programme.priority,
                        programme.content,
                        duration,
                        level,
                    )
                )
    return occurrences


def for_notice(programmes: Iterable[Programme], text: str, at: datetime) -> list[Occurrence]:
    """Occurrences of every notice-triggered programme for one urgent notice at `at`.

    The programme's text may hold `{text}`, replaced by the notice's text.
    """
    _require_aware(at, "at")
    out = []
    for programme in programmes:
        if programme.trigger is not Trigger.NOTICE:
            continue
        content = programme.content
        if isinstance(content, SmsText):
            content = SmsText(content.text.replace("{text}", text))
        out += [
            Occurrence(
                programme.id,
                programme.channel,
                area,
                at,
                programme.priority,
                content,
                programme.duration,
                "",
            )
            for area in programme.areas
        ]
    return out


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")


def _group_by_timeline(
    programme: Programme, timeline: _Timeline
) -> dict[Segments, tuple[str, ...]]:
    groups: dict[Segments, list[str]] = defaultdict(list)
    for code in programme.areas:
        groups[timeline.segments(code)].append(code)
    return {segments: tuple(codes) for segments, codes in groups.items()}


def _instants(
    programme: Programme, segments: Segments, end: datetime, days: _DayInstants
) -> list[tuple[datetime, str, timedelta | None]]:
    """The instants of one programme over one level timeline."""
    lowest = next(iter(programme.cadences))
    out = []
    for i, (seg_start, level) in enumerate(segments):
        seg_end = segments[i + 1][0] if i + 1 < len(segments) else end
        cadence = programme.cadence_at(level or lowest)
        if cadence is None:
            continue
        duration = cadence.duration or programme.duration
        for day in days.between(seg_start, seg_end):
            if not cadence.applies_on(day):
                continue
            for at in days.instants(day, cadence.times):
                if seg_start <= at < seg_end:
                    out.append((at, level or lowest, duration))
    return out


class _DayInstants:
    """Memoise a local day's UTC instants for a set of times of day."""

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz
        self._cache: dict[tuple[date, tuple[time, ...]], list[datetime]] = {}
        self._days: dict[tuple[datetime, datetime], list[date]] = {}

    def between(self, start: datetime, end: datetime) -> list[date]:
        key = (start, end)
        if key not in self._days:
            self._days[key] = list(local_days(start, end, self._tz))
        return self._days[key]

    def instants(self, day: date, times: tuple[time, ...]) -> list[datetime]:
        key = (day, times)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = instants(day, times, self._tz)
        return found


class _Timeline:
    """Each area's levels over [start, end), shared by areas that inherit them."""

    def __init__(
        self,
        changes: Iterable[LevelChange],
        registry: AreaRegistry,
        start: datetime,
        end: datetime,
    ) -> None:
        own: dict[str, list[LevelChange]] = defaultdict(list)
        for change in changes:
            own[change.area].append(change)
        self._own = {code: sorted(items, key=lambda c: c.at) for code, items in own.items()}
        self._times = {code: [c.at for c in items] for code, items in self._own.items()}
        self._registry = registry
        self._start = start
        self._end = end
        self._memo: dict[str, Segments] = {}

    def segments(self, code: str) -> Segments:
        found = self._memo.get(code)
        if found is not None:
            return found
        area = self._registry.get(code)
        if code not in self._own and area.level is None and area.parent is not None:
            found = self.segments(area.parent)
        else:
            found = self._compute(code)
        self._memo[code] = found
        return found

    def _compute(self, code: str) -> Segments:
        chain = [code, *(a.code for a in self._registry.ancestors(code))]
        breaks = sorted(
            {at for c in chain for at in self._times.get(c, ()) if self._start < at < self._end}
        )
        segments: list[tuple[datetime, str]] = []
        for at in [self._start, *breaks]:
            level = self._level_at(chain, at)
            if not segments or segments[-1][1] != level:
                segments.append((at, level))
        return tuple(segments)

    def _level_at(self, chain: Sequence[str], at: datetime) -> str:
        """Mirror levels.level_in_force: nearest change as of `at`, else configured."""
        for code in chain:
            times = self._times.get(code)
            if times:
                index = bisect_right(times, at)
                if index:
                    return self._own[code][index - 1].level
        for code in chain:
            level = self._registry.get(code).level
            if level is not None:
                return level
        return ""


def group_by_time(occurrences: Iterable[Occurrence]) -> Mapping[datetime, list[Occurrence]]:
    """Bucket occurrences by instant: one scheduler job fires each bucket."""
    buckets: dict[datetime, list[Occurrence]] = defaultdict(list)
    for occurrence in occurrences:
        buckets[occurrence.at].append(occurrence)
    return dict(buckets)
