"""What a level change would change over the next hours: plan both ways, compare. Pure.

The console shows this before anyone confirms a level change: how many
loudspeaker slots, relays, van rounds, tasks and SMS the area and the areas
below it gain or lose, and what the SMS cost. It plans with the one planner
twice (the history as it is, and with the new level from `start`), so the
preview is what the daemon would then do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from broadcaster.areas import AreaRegistry
from broadcaster.levels import LevelChange
from broadcaster.occurrence import Channel, Occurrence, SmsText
from broadcaster.planner import plan
from broadcaster.programmes import Programme
from broadcaster.sms.encoding import encode_text

MAX_PARTS = 255  # count what a text would cost even past the sending cap


@dataclass(frozen=True)
class ChannelImpact:
    """Occurrences on one channel before and after the change."""

    channel: Channel
    before: int
    after: int

    @property
    def delta(self) -> int:
        return self.after - self.before


@dataclass(frozen=True)
class Impact:
    """The difference a level change makes in [start, end) for an area and below."""

    area: str
    level: str
    start: datetime
    end: datetime
    channels: tuple[ChannelImpact, ...]
    sms_before: int  # SMS parts sent: recipients × parts, summed
    sms_after: int
    cost_before: float
    cost_after: float

    @property
    def sms_delta(self) -> int:
        return self.sms_after - self.sms_before

    @property
    def cost_delta(self) -> float:
        return self.cost_after - self.cost_before


def level_impact(
    programmes: Iterable[Programme],
    changes: Sequence[LevelChange],
    registry: AreaRegistry,
    *,
    area: str,
    level: str,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    recipients: Mapping[str, int],
    part_price: Mapping[str, float] | None = None,
) -> Impact:
    """Compare the plan of [start, end) with and without `level` set on `area` at `start`.

    `recipients` counts SMS subscribers per commune; `part_price` is what one
    SMS part to all of a commune's subscribers costs (their carriers' prices).
    """
    programmes = tuple(programmes)
    reach = {area, *(a.code for a in registry.descendants(area))}
    change = LevelChange(area, level, start, "preview", "preview")
    before = _within(plan(programmes, changes, registry, start, end, tz), reach)
    after = _within(plan(programmes, [*changes, change], registry, start, end, tz), reach)
    counted_before = Counter(o.channel for o in before)
    counted_after = Counter(o.channel for o in after)
    channels = tuple(
        ChannelImpact(c, counted_before[c], counted_after[c])
        for c in Channel
        if counted_before[c] or counted_after[c]
    )
    parts = _PartsCounter(registry, recipients)
    prices = _PartsCounter(registry, part_price or {})
    return Impact(
        area,
        level,
        start,
        end,
        channels,
        round(parts.total(before)),
        round(parts.total(after)),
        prices.total(before),
        prices.total(after),
    )


def _within(occurrences: Iterable[Occurrence], reach: set[str]) -> list[Occurrence]:
    return [o for o in occurrences if o.area in reach]


class _PartsCounter:
    """Sum over SMS occurrences of each text's parts times a per-commune weight
    (recipients, or the price of one part to them) over the communes it reaches."""

    def __init__(self, registry: AreaRegistry, weights: Mapping[str, float]) -> None:
        self._registry = registry
        self._recipients = weights
        self._reach: dict[str, float] = {}
        self._parts: dict[str, int] = {}

    def total(self, occurrences: Iterable[Occurrence]) -> float:
        return sum(self._one(o) for o in occurrences if o.channel is Channel.SMS)

    def _one(self, o: Occurrence) -> float:
        text = o.content.text if isinstance(o.content, SmsText) else ""
        if text not in self._parts:
            self._parts[text] = encode_text(text, max_parts=MAX_PARTS).parts if text else 0
        if o.area not in self._reach:
            self._reach[o.area] = sum(
                self._recipients.get(c.code, 0) for c in self._registry.communes_under(o.area)
            )
        return self._parts[text] * self._reach[o.area]
