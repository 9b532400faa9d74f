"""Ladders, thresholds and the level in force down the area tree (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broadcaster.areas import UnknownArea
from broadcaster.config import load_settings
from broadcaster.levels import LevelChange, UnknownLevel, latest_changes, level_in_force
from tests.conftest import REPO

T0 = datetime(2021, 9, 1, 1, 0, tzinfo=UTC)
SAMPLE = load_settings(REPO / "config.toml")
REGISTRY = SAMPLE.registry()
LADDERS = SAMPLE.ladder_objects()


def change(area: str, level: str, minutes: int = 0) -> LevelChange:
    return LevelChange(area, level, T0 + timedelta(minutes=minutes), "op", "test")


@pytest.mark.parametrize(
    ("cases", "level"),
    [
        (0, "1"),
        (1, "2"),
        (19, "2"),
        (20, "3"),
        (79, "3"),
        (80, "4"),
        (399, "4"),
        (400, "5"),
        (100_000, "5"),
    ],
)
def test_gia_lai_case_counts_map_to_levels_at_the_thresholds(cases: int, level: str) -> None:
    ladder = load_settings(REPO / "examples" / "gia-lai.toml").ladder_objects()["gia-lai"]
    assert ladder.suggest(cases).name == level


def test_dinh_hoa_degrees_sit_above_levels_one_to_four_in_order() -> None:
    ladder = LADDERS["thai-nguyen"]
    assert ladder.index("5.1") < ladder.index("5.2") < ladder.index("5.3")
    assert ladder.index("4") < ladder.index("5.1")


def test_unknown_level_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownLevel, match=r"valid levels: 1, 2, 3, 4, 5\.1, 5\.2, 5\.3"):
        LADDERS["thai-nguyen"].index("6")


def test_unknown_area_lists_the_known_codes() -> None:
    with pytest.raises(UnknownArea, match=r"known areas: 05437, .*167, 19"):
        REGISTRY.get("99999")


def test_commune_inherits_the_district_level_and_says_from_where() -> None:
    latest = latest_changes([change("167", "5.2")])
    in_force = level_in_force("05440", REGISTRY, LADDERS, latest)
    assert (in_force.level, in_force.inherited_from, in_force.since) == ("5.2", "167", T0)


def test_province_level_reaches_communes_through_the_district() -> None:
    latest = latest_changes([change("19", "4")])
    assert level_in_force("05440", REGISTRY, LADDERS, latest).inherited_from == "19"
    assert level_in_force("05440", REGISTRY, LADDERS, latest).level == "4"


def test_a_commune_with_its_own_level_keeps_it_when_the_district_changes_later() -> None:
    latest = latest_changes([change("05440", "5.3", 0), change("167", "5.1", 10)])
    own = level_in_force("05440", REGISTRY, LADDERS, latest)
    sibling = level_in_force("05443", REGISTRY, LADDERS, latest)
    assert (own.level, own.inherited_from) == ("5.3", None)
    assert (sibling.level, sibling.inherited_from) == ("5.1", "167")


def test_without_decisions_the_configured_start_level_holds_then_the_lowest() -> None:
    assert level_in_force("05440", REGISTRY, LADDERS, {}).level == "5.1"
    assert level_in_force("19", REGISTRY, LADDERS, {}).level == "1"


def test_latest_changes_as_of_a_moment_ignores_later_decisions() -> None:
    changes = [change("167", "5.2", 0), change("167", "5.3", 60)]
    assert latest_changes(changes, at=T0 + timedelta(minutes=30))["167"].level == "5.2"
    assert latest_changes(changes)["167"].level == "5.3"


def test_level_change_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        LevelChange("167", "5.2", datetime(2021, 9, 1), "op", "why")
