"""The plan → SVG timeline: one mark per occurrence where its time is, trouble in red."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from broadcaster.occurrence import Channel, Occurrence, Priority, SmsText
from broadcaster.planner import plan
from broadcaster.timeline import RED, Geometry, Labels, timeline_svg
from tests.planner_fixtures import sample_programmes, set_at, settings

CONFIG = settings()
REGISTRY = CONFIG.registry()
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
NS = {"s": "http://www.w3.org/2000/svg"}
START = datetime(2021, 9, 10, tzinfo=HCM).astimezone(UTC)
END = START + timedelta(days=1)


def _day_plan(level: str = "5.3") -> list[Occurrence]:
    return plan(sample_programmes(CONFIG), [set_at("167", level)], REGISTRY, START, END, HCM)


def _marks(svg: str) -> list[ET.Element]:
    return ET.fromstring(svg).findall(".//s:rect[@data-programme]", NS)


def _x(at: datetime) -> float:
    geo = Geometry()
    return geo.left + (at - START).total_seconds() / 86400 * geo.axis


def test_every_occurrence_gets_one_mark_at_its_time():
    occurrences = _day_plan()
    marks = _marks(timeline_svg(occurrences, REGISTRY, START, END, HCM))
    assert len(marks) == len(occurrences)
    drawn = {(m.get("data-programme"), m.get("data-area"), m.get("data-at")): m for m in marks}
    for o in occurrences:
        mark = drawn[(o.programme, o.area, o.at.isoformat())]
        assert float(mark.get("x")) == pytest.approx(_x(o.at), abs=0.01)


def test_a_marks_width_is_its_duration_on_the_axis():
    van = next(o for o in _day_plan() if o.channel is Channel.VAN)
    mark = next(m for m in _marks(timeline_svg([van], REGISTRY, START, END, HCM)))
    assert float(mark.get("width")) == pytest.approx(van.duration.total_seconds() / 60, abs=0.01)


def test_dropped_and_missed_marks_are_red_and_nothing_else_is():
    occurrences = _day_plan()
    dropped, missed = occurrences[0], occurrences[-1]
    svg = timeline_svg(
        occurrences, REGISTRY, START, END, HCM, dropped={dropped.key}, missed={missed.key}
    )
    red = [m for m in _marks(svg) if m.get("fill") == RED]
    assert {(m.get("data-programme"), m.get("data-area"), m.get("data-at")) for m in red} == {
        (o.programme, o.area, o.at.isoformat()) for o in (dropped, missed)
    }
    classes = {m.get("data-at"): m.get("class").split() for m in red}
    assert "dropped" in classes[dropped.at.isoformat()]
    assert "missed" in classes[missed.at.isoformat()]


def test_rows_follow_the_area_tree_with_vietnamese_names_intact():
    svg = timeline_svg(_day_plan(), REGISTRY, START, END, HCM, title="Huyện Định Hóa")
    names = [t.text for t in ET.fromstring(svg).findall(".//s:text[@class='area']", NS)]
    assert names[0] == "Huyện Định Hóa"
    communes = [a.name for a in REGISTRY.communes_under("167")]
    assert names[1:] == communes
    assert "Xã Lam Vỹ" in names
    assert 'font-family="sans-serif"' in svg and "@font-face" not in svg


def test_the_now_line_sits_at_now_and_only_inside_the_span():
    now = START + timedelta(hours=9, minutes=30)
    root = ET.fromstring(timeline_svg(_day_plan(), REGISTRY, START, END, HCM, now=now))
    line = root.find(".//s:g[@class='now']/s:line", NS)
    assert float(line.get("x1")) == pytest.approx(_x(now), abs=0.01)
    later = ET.fromstring(timeline_svg([], REGISTRY, START, END, HCM, now=END + timedelta(hours=1)))
    assert later.find(".//s:g[@class='now']", NS) is None


def test_hour_labels_are_local_time():
    root = ET.fromstring(timeline_svg([], REGISTRY, START, END, HCM))
    labels = [t.text for t in root.findall(".//s:g[@class='axis']/s:text", NS)]
    assert labels[:3] == ["00:00", "01:00", "02:00"]


def test_emergencies_are_outlined_and_labels_can_be_english():
    at = START + timedelta(hours=7)
    sms = Occurrence("alert", Channel.SMS, "167", at, Priority.EMERGENCY, SmsText("x"), None, "5.3")
    english = Labels(channels={c: c.value for c in Channel}, emergency="Emergency")
    root = ET.fromstring(timeline_svg([sms], REGISTRY, START, END, HCM, labels=english))
    mark = root.find(".//s:rect[@data-programme='alert']", NS)
    assert mark.get("stroke") is not None and mark.get("fill") != RED
    assert "Emergency" in mark.find("s:title", NS).text


def test_a_district_of_24_communes_fits_one_readable_picture():
    occurrences = _day_plan()
    root = ET.fromstring(timeline_svg(occurrences, REGISTRY, START, END, HCM))
    areas = {o.area for o in occurrences}
    lanes = {(o.area, o.channel) for o in occurrences}
    assert len(areas) == 25  # the district and its 24 communes
    geo = Geometry()
    assert float(root.get("height")) == geo.header + len(lanes) * geo.lane + geo.footer


def test_naive_or_empty_spans_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        timeline_svg([], REGISTRY, START.replace(tzinfo=None), END, HCM)
    with pytest.raises(ValueError, match="after"):
        timeline_svg([], REGISTRY, END, START, HCM)
