"""What the slot layout drops maps back to the plan's occurrences (the timeline's red)."""

from __future__ import annotations

from datetime import UTC, datetime

from broadcaster.clashes import Drop
from broadcaster.dropped import drops_by_occurrence
from tests.planner_fixtures import settings

REGISTRY = settings().registry()
AT = datetime(2021, 9, 9, 23, 30, tzinfo=UTC)


def _drop(programme: str, *stations: str) -> Drop:
    return Drop(programme, "clip", AT, None, "no room", frozenset(stations))


def test_a_communes_drop_marks_the_occurrence_on_it_and_on_the_areas_above():
    found = drops_by_occurrence([_drop("commune-bulletin", "linh-thong")], REGISTRY)
    assert set(found) == {("commune-bulletin", code, AT) for code in ("05440", "167", "19")}
    assert found[("commune-bulletin", "05440", AT)][0].stations == {"linh-thong"}


def test_a_district_occurrence_keeps_only_the_stations_under_it():
    found = drops_by_occurrence(
        [_drop("district-bulletin", "linh-thong", "cho-chu"), _drop("van-round", "van-167")],
        REGISTRY,
    )
    assert found[("district-bulletin", "167", AT)][0].stations == {"linh-thong", "cho-chu"}
    assert found[("district-bulletin", "05437", AT)][0].stations == {"cho-chu"}
    assert ("van-round", "167", AT) in found and ("van-round", "05440", AT) not in found
