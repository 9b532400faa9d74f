"""Draw a plan as an SVG timeline: one row per area and channel on a time axis. Pure.

The console's overview and `broadcaster plan --svg` show the same picture, so
it is one function of plain values: the occurrences, the areas, the span, the
zone to label the clock in, and optionally `now` and the keys of occurrences
that were dropped from their slot (no room, or no clip valid that day) or
missed (too late to act on).
Those are drawn red and nothing else is, so trouble stands out. No fonts are
embedded: labels use the generic sans-serif family, which renders Vietnamese
diacritics with whatever the viewer has. Every mark carries its programme,
area and time as data attributes and a `<title>` tooltip, so a browser shows
what a mark is and a test can check where it is.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from broadcaster.areas import AreaRegistry
from broadcaster.occurrence import Channel, Occurrence, Priority

Key = tuple[str, str, datetime]

RED = "#d32f2f"
COLOURS: Mapping[Channel, str] = {
    Channel.LOUDSPEAKER: "#1565c0",
    Channel.RELAY: "#00838f",
    Channel.VAN: "#2e7d32",
    Channel.SMS: "#6a1b9a",
    Channel.TASK: "#616161",
}
CHANNEL_ORDER = (Channel.LOUDSPEAKER, Channel.RELAY, Channel.VAN, Channel.SMS, Channel.TASK)
EMERGENCY_STROKE = "#ef6c00"
NOW_COLOUR = "#111111"


@dataclass(frozen=True)
class Labels:
    """The words the picture uses; Vietnamese by default, the console passes its own."""

    channels: Mapping[Channel, str] = field(
        default_factory=lambda: {
            Channel.LOUDSPEAKER: "Loa",
            Channel.RELAY: "Tiếp sóng",
            Channel.VAN: "Xe lưu động",
            Channel.SMS: "SMS",
            Channel.TASK: "Tác vụ",
        }
    )
    now: str = "Bây giờ"
    dropped: str = "Bị bỏ khỏi khung phát"
    missed: str = "Bỏ lỡ"
    emergency: str = "Khẩn cấp"
    nothing: str = "Không có gì được lên lịch"


@dataclass(frozen=True)
class Geometry:
    """Sizes in SVG user units (pixels at 100 %)."""

    area_column: float = 190.0
    channel_column: float = 84.0
    axis: float = 1440.0  # one pixel a minute over a day
    lane: float = 18.0
    header: float = 44.0
    footer: float = 34.0
    min_mark: float = 3.0

    @property
    def left(self) -> float:
        return self.area_column + self.channel_column

    @property
    def width(self) -> float:
        return self.left + self.axis + 16.0


@dataclass(frozen=True)
class _Lane:
    area: str
    channel: Channel
    first: bool  # the area's first lane carries its name
    items: tuple[Occurrence, ...]


def timeline_svg(
    occurrences: Iterable[Occurrence],
    registry: AreaRegistry,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    *,
    now: datetime | None = None,
    dropped: Collection[Key] = frozenset(),
    missed: Collection[Key] = frozenset(),
    title: str = "",
    labels: Labels | None = None,
    geometry: Geometry | None = None,
) -> str:
    """Render occurrences in [start, end) as an SVG document (a string).

    Rows follow the area tree (parents first); each area gets one lane per
    channel it has. A mark starts at its occurrence's instant and is as wide
    as its duration (at least `min_mark`). `now` outside the span draws no line.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError("end must be after start")
    labels = labels or Labels()
    geo = geometry or Geometry()
    scale = _Scale(start, end, geo)
    lanes = _lanes([o for o in occurrences if start <= o.at < end], registry)
    height = geo.header + max(len(lanes), 1) * geo.lane + geo.footer
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {_n(geo.width)} {_n(height)}",
            "width": _n(geo.width),
            "height": _n(height),
            "font-family": "sans-serif",
            "font-size": "12",
            "role": "img",
            "class": "timeline",
        },
    )
    ET.SubElement(svg, "rect", {"width": "100%", "height": "100%", "fill": "#ffffff"})
    if title:
        ET.SubElement(svg, "title").text = title
        _text(svg, 8, 16, title, weight="bold", size=14)
    _bands(svg, lanes, geo)
    _axis(svg, scale, tz, geo, height)
    if not lanes:
        _text(svg, geo.left + 8, geo.header + 13, labels.nothing, fill="#555555")
    bad = {"dropped": set(dropped), "missed": set(missed)}
    for row, lane in enumerate(lanes):
        _lane(svg, lane, row, registry, scale, geo, labels, tz, bad)
    if now is not None and start <= now <= end:
        _now_line(svg, scale.x(now), now, tz, geo, height, labels)
    _legend(svg, geo, height, labels)
    return ET.tostring(svg, encoding="unicode")


class _Scale:
    def __init__(self, start: datetime, end: datetime, geo: Geometry) -> None:
        self.start = start
        self.end = end
        self.geo = geo
        self.per_second = geo.axis / (end - start).total_seconds()

    def x(self, at: datetime) -> float:
        return self.geo.left + (at - self.start).total_seconds() * self.per_second

    def width(self, duration: timedelta | None) -> float:
        seconds = duration.total_seconds() if duration else 0.0
        return max(seconds * self.per_second, self.geo.min_mark)


def _lanes(occurrences: Sequence[Occurrence], registry: AreaRegistry) -> list[_Lane]:
    by_area: dict[str, dict[Channel, list[Occurrence]]] = defaultdict(lambda: defaultdict(list))
    for o in occurrences:
        by_area[o.area][o.channel].append(o)
    known = [a.code for a in registry.all()]
    order = [c for c in known if c in by_area] + sorted(set(by_area) - set(known))
    lanes = []
    for code in order:
        channels = [c for c in CHANNEL_ORDER if c in by_area[code]]
        for i, channel in enumerate(channels):
            items = tuple(sorted(by_area[code][channel], key=lambda o: o.at))
            lanes.append(_Lane(code, channel, i == 0, items))
    return lanes


def _bands(svg: ET.Element, lanes: Sequence[_Lane], geo: Geometry) -> None:
    """Shade every other area so a reader's eye stays on one area's lanes."""
    shade = False
    for row, lane in enumerate(lanes):
        if lane.first:
            shade = not shade
            if row:
                y = geo.header + row * geo.lane
                ET.SubElement(
                    svg,
                    "line",
                    {"x1": "0", "x2": _n(geo.width), "y1": _n(y), "y2": _n(y), "stroke": "#cfd8dc"},
                )
        if shade:
            ET.SubElement(
                svg,
                "rect",
                {
                    "x": "0",
                    "y": _n(geo.header + row * geo.lane),
                    "width": _n(geo.width),
                    "height": _n(geo.lane),
                    "fill": "#f3f6f8",
                },
            )


def _axis(svg: ET.Element, scale: _Scale, tz: ZoneInfo, geo: Geometry, height: float) -> None:
    """Hour lines across the lanes, labelled in local time (every 2 h when crowded)."""
    group = ET.SubElement(svg, "g", {"class": "axis"})
    hours = (scale.end - scale.start).total_seconds() / 3600
    step = 1 if hours * 28 <= geo.axis else 2 if hours * 14 <= geo.axis else 6
    local = scale.start.astimezone(tz)
    first = local.replace(minute=0, second=0, microsecond=0)
    if first < local:
        first += timedelta(hours=1)
    at = first.astimezone(scale.start.tzinfo)
    bottom = height - geo.footer
    while at <= scale.end:
        x = scale.x(at)
        hour = at.astimezone(tz)
        strong = hour.hour % step == 0
        ET.SubElement(
            group,
            "line",
            {
                "x1": _n(x),
                "x2": _n(x),
                "y1": _n(geo.header - 6),
                "y2": _n(bottom),
                "stroke": "#b0bec5" if strong else "#e3e8eb",
            },
        )
        if strong:
            label = hour.strftime("%H:%M") if hour.hour or hours <= 24 else hour.strftime("%d/%m")
            _text(group, x, geo.header - 10, label, anchor="middle", size=11, fill="#37474f")
        at += timedelta(hours=1)


def _lane(
    svg: ET.Element,
    lane: _Lane,
    row: int,
    registry: AreaRegistry,
    scale: _Scale,
    geo: Geometry,
    labels: Labels,
    tz: ZoneInfo,
    bad: Mapping[str, set[Key]],
) -> None:
    top = geo.header + row * geo.lane
    baseline = top + geo.lane - 5
    if lane.first:
        name = registry.get(lane.area).name if lane.area in registry else lane.area
        _text(
            svg,
            8,
            baseline,
            _clip(name, geo.area_column - 12),
            weight="bold",
            attrs={"class": "area", "data-area": lane.area},
        )
    _text(
        svg,
        geo.left - 6,
        baseline,
        labels.channels.get(lane.channel, lane.channel.value),
        anchor="end",
        size=11,
        fill="#455a64",
    )
    for o in lane.items:
        _mark(svg, o, top, scale, geo, labels, tz, bad)


def _mark(
    svg: ET.Element,
    o: Occurrence,
    top: float,
    scale: _Scale,
    geo: Geometry,
    labels: Labels,
    tz: ZoneInfo,
    bad: Mapping[str, set[Key]],
) -> None:
    state = next((name for name, keys in bad.items() if o.key in keys), None)
    classes = ["mark", o.channel.value] + ([state] if state else [])
    attrs = {
        "class": " ".join(classes),
        "x": _n(scale.x(o.at)),
        "y": _n(top + 3),
        "width": _n(scale.width(o.duration)),
        "height": _n(geo.lane - 6),
        "rx": "2",
        "fill": RED if state else COLOURS.get(o.channel, "#607d8b"),
        "data-programme": o.programme,
        "data-area": o.area,
        "data-at": o.at.isoformat(),
    }
    if o.priority is Priority.EMERGENCY:
        attrs |= {"stroke": EMERGENCY_STROKE, "stroke-width": "2"}
    rect = ET.SubElement(svg, "rect", attrs)
    when = o.at.astimezone(tz).strftime("%H:%M")
    length = f" ({int(o.duration.total_seconds() // 60)} min)" if o.duration else ""
    tail = {"dropped": labels.dropped, "missed": labels.missed}.get(state or "", "")
    urgent = f" [{labels.emergency}]" if o.priority is Priority.EMERGENCY else ""
    ET.SubElement(rect, "title").text = f"{when}{length} {o.programme}{urgent}" + (
        f" — {tail}" if tail else ""
    )


def _now_line(
    svg: ET.Element,
    x: float,
    now: datetime,
    tz: ZoneInfo,
    geo: Geometry,
    height: float,
    labels: Labels,
) -> None:
    group = ET.SubElement(svg, "g", {"class": "now", "data-at": now.isoformat()})
    ET.SubElement(
        group,
        "line",
        {
            "x1": _n(x),
            "x2": _n(x),
            "y1": _n(geo.header - 4),
            "y2": _n(height - geo.footer),
            "stroke": NOW_COLOUR,
            "stroke-width": "2",
            "stroke-dasharray": "5 3",
        },
    )
    _text(
        group,
        x + 4,
        geo.header - 24,
        f"{labels.now} {now.astimezone(tz):%H:%M}",
        weight="bold",
        size=11,
        fill=NOW_COLOUR,
    )


def _legend(svg: ET.Element, geo: Geometry, height: float, labels: Labels) -> None:
    group = ET.SubElement(svg, "g", {"class": "legend"})
    y = height - geo.footer + 14
    x = 8.0
    entries: list[tuple[str, str, str | None]] = [
        (COLOURS[c], labels.channels[c], None) for c in CHANNEL_ORDER
    ]
    entries += [
        ("#ffffff", labels.emergency, EMERGENCY_STROKE),
        (RED, labels.dropped, None),
        (RED, labels.missed, None),
    ]
    for colour, name, stroke in entries:
        box = {"x": _n(x), "y": _n(y), "width": "14", "height": "12", "rx": "2", "fill": colour}
        if stroke:
            box |= {"stroke": stroke, "stroke-width": "2"}
        ET.SubElement(group, "rect", box)
        _text(group, x + 19, y + 10, name, size=11)
        x += 19 + _text_width(name, 11) + 18


def _text(
    parent: ET.Element,
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    weight: str = "normal",
    size: int = 12,
    fill: str = "#1b1b1b",
    attrs: Mapping[str, str] | None = None,
) -> ET.Element:
    element = ET.SubElement(
        parent,
        "text",
        {
            "x": _n(x),
            "y": _n(y),
            "text-anchor": anchor,
            "font-size": str(size),
            "font-weight": weight,
            "fill": fill,
            **(attrs or {}),
        },
    )
    element.text = text
    return element


def _text_width(text: str, size: int) -> float:
    """Estimate a label's width: no font metrics here, so use an average glyph width."""
    return len(text) * size * 0.56


def _clip(text: str, width: float, size: int = 12) -> str:
    """Shorten a label to fit `width`, ending with an ellipsis when cut."""
    if _text_width(text, size) <= width:
        return text
    keep = max(int(width / (size * 0.56)) - 1, 1)
    return text[:keep] + "…"


def _n(value: float) -> str:
    """Format a coordinate compactly: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
