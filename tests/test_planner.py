"""The planner reproduces the seeds' cadences and keeps wall-clock slots across DST."""

from __future__ import annotations

import tomllib
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from broadcaster.occurrence import Channel, Occurrence, Priority, SmsText
from broadcaster.planner import for_notice, plan
from tests.planner_fixtures import REPO, programmes_from, sample_programmes, set_at, settings

CONFIG = settings()
PROGRAMMES = sample_programmes(CONFIG)
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
LONDON = ZoneInfo("Europe/London")

# Định Hóa's table (DOMAIN.md, seed 003), per degree: district bulletins relayed by
# every commune, van rounds, AI bulletins and the hours between map refreshes.
DINH_HOA = {
    "5.1": {"bulletins": 3, "van": 1, "ai": 0, "map_every_h": 24},
    "5.2": {"bulletins": 3, "van": 2, "ai": 2, "map_every_h": 12},
    "5.3": {"bulletins": 3, "van": 3, "ai": 3, "map_every_h": 6},
}


def _communes_in_config() -> int:
    raw = tomllib.loads((REPO / "config.toml").read_text(encoding="utf-8"))
    return sum(1 for c in raw["areas"]["communes"] if c["district"] == "167")


def _local_day(day: int, tz: ZoneInfo = HCM) -> tuple[datetime, datetime]:
    start = datetime(2021, 9, day, tzinfo=tz)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


@pytest.mark.parametrize("degree", sorted(DINH_HOA))
def test_plan_reproduces_the_dinh_hoa_table_for_each_degree(degree: str):
    expected = DINH_HOA[degree]
    days = 3
    start, _ = _local_day(10)
    end = start + timedelta(days=days)
    occurrences = plan(PROGRAMMES, [set_at("167", degree)], CONFIG.registry(), start, end, HCM)
    counts = Counter(o.programme for o in occurrences)
    assert counts["district-bulletin"] == expected["bulletins"] * _communes_in_config() * days
    assert counts["van-round"] == expected["van"] * days
    assert counts["ai-bulletin"] == expected["ai"] * days
    assert counts["epidemic-map-refresh"] == 24 // expected["map_every_h"] * days
    assert counts["urgent-notice-sms"] == 0  # sent per notice, never planned
    bulletin_areas = {o.area for o in occurrences if o.programme == "district-bulletin"}
    assert len(bulletin_areas) == _communes_in_config()


def test_nothing_is_planned_below_the_first_defined_level():
    start, end = _local_day(10)
    assert plan(PROGRAMMES, [set_at("167", "4")], CONFIG.registry(), start, end, HCM) == []


def test_configured_starting_level_applies_without_any_change():
    start, end = _local_day(10)
    occurrences = plan(PROGRAMMES, [], CONFIG.registry(), start, end, HCM)
    assert Counter(o.level for o in occurrences) == {"5.1": len(occurrences)}


def test_slots_are_local_wall_clock_times_stored_in_utc():
    start, end = _local_day(10)
    occurrences = plan(PROGRAMMES, [], CONFIG.registry(), start, end, HCM)
    bulletin = next(o for o in occurrences if o.programme == "district-bulletin")
    assert bulletin.at == datetime(2021, 9, 9, 23, 0, tzinfo=UTC)  # 06:00 +07:00
    assert bulletin.at.tzinfo is UTC
    assert [o.at for o in occurrences] == sorted(o.at for o in occurrences)


def test_level_change_inside_the_interval_switches_cadence_at_its_instant():
    start, end = _local_day(10)
    noon = datetime(2021, 9, 10, 12, tzinfo=HCM).astimezone(UTC)
    changes = [set_at("167", "5.1"), set_at("167", "5.3", noon)]
    occurrences = plan(PROGRAMMES, changes, CONFIG.registry(), start, end, HCM)
    vans = [
        (o.at.astimezone(HCM).strftime("%H:%M"), o.level)
        for o in occurrences
        if o.programme == "van-round"
    ]
    # 08:00 under degree 1; from noon degree 3 (08:00, 12:00, 16:00) adds 12:00 and 16:00.
    assert vans == [("08:00", "5.1"), ("12:00", "5.3"), ("16:00", "5.3")]


def test_a_commune_with_its_own_level_leaves_its_neighbours_alone():
    start, end = _local_day(10)
    changes = [set_at("167", "5.1"), set_at("05440", "4")]
    occurrences = plan(PROGRAMMES, changes, CONFIG.registry(), start, end, HCM)
    per_area = Counter(o.area for o in occurrences if o.programme == "district-bulletin")
    assert "05440" not in per_area
    assert per_area["05437"] == 3


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(PROGRAMMES, [], CONFIG.registry(), datetime(2021, 9, 10), datetime.now(UTC), HCM)
    with pytest.raises(ValueError, match="naive datetime"):
        Occurrence("p", Channel.SMS, "167", datetime(2021, 9, 10), Priority.NORMAL, SmsText("x"))


NIGHT = """
[[programme]]
id = "night"
channel = "task"
areas = ["167"]
content = { command = ["true"] }
[programme.levels."5.1"]
times = ["00:30", "01:30", "06:00"]
"""


def _around(day: datetime) -> list[Occurrence]:
    programmes = programmes_from(NIGHT, CONFIG)
    start = (day - timedelta(days=1)).astimezone(UTC)
    end = (day + timedelta(days=2)).astimezone(UTC)
    return plan(programmes, [], CONFIG.registry(), start, end, LONDON)


def test_spring_forward_loses_no_slot_and_doubles_none():
    occurrences = _around(datetime(2024, 3, 31, tzinfo=LONDON))
    per_day = Counter(o.at.astimezone(LONDON).date().isoformat() for o in occurrences)
    assert per_day == {"2024-03-30": 3, "2024-03-31": 3, "2024-04-01": 3}
    moved = [o.at for o in occurrences if o.at.date().isoformat() == "2024-03-31"]
    # 01:30 does not exist on the night clocks go forward: it airs at 02:30 BST.
    assert datetime(2024, 3, 31, 1, 30, tzinfo=UTC) in moved
    assert len({o.key for o in occurrences}) == len(occurrences)


def test_autumn_1_30_slot_fires_once_on_the_repeated_hour():
    occurrences = _around(datetime(2024, 10, 27, tzinfo=LONDON))
    night = [
        o.at for o in occurrences if o.at.astimezone(LONDON).date().isoformat() == "2024-10-27"
    ]
    assert len(night) == 3
    one_thirty = [at for at in night if at.astimezone(LONDON).strftime("%H:%M") == "01:30"]
    assert one_thirty == [datetime(2024, 10, 27, 0, 30, tzinfo=UTC)]  # first 01:30, BST


def test_an_urgent_notice_becomes_one_sms_per_target():
    at = datetime(2021, 9, 10, 15, tzinfo=UTC)
    (sms,) = for_notice(PROGRAMMES, "Phong toa thon Na Mao tu 18h", at)
    assert sms.channel == "sms" and sms.priority == "emergency" and sms.area == "167"
    assert sms.content.text == "BCD PCD COVID-19 huyen Dinh Hoa: Phong toa thon Na Mao tu 18h"


GIA_LAI = settings(REPO / "examples" / "gia-lai.toml")


@pytest.mark.parametrize(
    "level,relays,declarations,sms",
    [
        ("1", 1 * 7, 3, 0),
        ("2", 2 * 7, 3, 1),
        ("3", 3 * 7, 2 * 7, 7),
        ("4", 4 * 7, 2 * 7, 7),
        ("5", 5 * 7, 2 * 7, 2 * 7),
    ],
)
def test_gia_lai_frequencies_rise_with_each_level(level, relays, declarations, sms):
    programmes = sample_programmes(GIA_LAI)
    registry = GIA_LAI.registry()
    communes = len(registry.communes_under("64"))
    start = datetime(2021, 9, 6, tzinfo=HCM).astimezone(UTC)  # a Monday
    occurrences = plan(
        programmes, [set_at("64", level)], registry, start, start + timedelta(days=7), HCM
    )
    counts = Counter(o.programme for o in occurrences)
    assert counts["provincial-radio-relay"] == relays * communes
    assert counts["health-declaration"] == declarations * communes
    assert counts["prevention-sms"] == sms
