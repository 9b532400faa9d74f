"""What the publisher reports dropped maps back to the plan's occurrences (the timeline's red)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from broadcaster.dropped import dropped_keys
from broadcaster.planner import plan
from tests.planner_fixtures import sample_programmes, set_at, settings

CONFIG = settings()
REGISTRY = CONFIG.registry()
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
START = datetime(2021, 9, 10, tzinfo=HCM).astimezone(UTC)
OCCURRENCES = plan(sample_programmes(CONFIG), [set_at("167", "5.3")], REGISTRY, START,
                   START + timedelta(days=1), HCM)


def _slot(start: str, end: str | None, *dropped: str) -> dict:
    return {"start": start, "end": end, "dropped": [
        {"programme": p, "item": "x", "language": None, "priority": "normal",
         "reason": "did not fit"} for p in dropped]}


def test_a_dropped_item_marks_its_programmes_occurrence_in_that_commune_and_slot():
    document = {"slots": [_slot("2021-09-10T06:30:00+07:00", "2021-09-10T11:00:00+07:00",
                                "commune-bulletin"),
                          _slot("2021-09-10T17:30:00+07:00", None)]}
    keys = dropped_keys([("05440", document)], OCCURRENCES, REGISTRY)
    [(programme, area, at)] = keys
    assert (programme, area) == ("commune-bulletin", "05440")
    assert at == datetime(2021, 9, 10, 6, 30, tzinfo=HCM)


def test_a_van_rounds_drop_marks_the_districts_round_and_nothing_elsewhere():
    rounds = sorted(o.at for o in OCCURRENCES if o.programme == "van-round")
    slots = [_slot(at.astimezone(HCM).isoformat(), None, *(["van-round"] if i == 1 else []))
             for i, at in enumerate(rounds)]
    keys = dropped_keys([("167", {"slots": slots})], OCCURRENCES, REGISTRY)
    assert keys == {("van-round", "167", rounds[1])}  # that round only, not the next one
    assert dropped_keys([("05440", {"slots": []})], OCCURRENCES, REGISTRY) == set()
