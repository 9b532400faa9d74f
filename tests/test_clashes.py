"""The check's layout is the publisher's: languages, chime and gaps decide what fits."""

from __future__ import annotations

from datetime import timedelta

from broadcaster.areas import Area, AreaKind, AreaRegistry
from broadcaster.clashes import Drop, Layout, find_drops
from tests.audio_fixtures import TZ, commune, local, occ, small_library


def _registry() -> AreaRegistry:
    areas = [
        Area("19", "Tỉnh", AreaKind.PROVINCE, None, "l"),
        Area("167", "Huyện", AreaKind.DISTRICT, "19", "l"),
        commune("05437", ("vi",), "cho-chu"),
        commune("05440", ("vi", "tyz"), "linh-thong"),
        commune("05443", ("vi", "tyz"), "lam-vy"),
    ]
    return AreaRegistry({a.code: a for a in areas})


def test_an_item_that_fits_in_one_language_but_not_in_two_is_dropped_where_two_are_spoken():
    start, following = local("06:00"), local("06:00") + timedelta(seconds=15)
    plan = [
        occ("p", "loudspeaker", "167", start, "normal", ["ban-tin"]),
        occ("q", "loudspeaker", "167", following, "normal", ["gian-cach"]),
    ]
    # chime 1 s + ban-tin 10 s (vi) fits in 15 s; + ban-tin 8 s (tyz) does not.
    drops = find_drops(plan, _registry(), Layout(small_library(), "chime", 0.0, 7200), TZ)
    assert drops == [
        Drop(
            "p",
            "ban-tin",
            start,
            following,
            "does not fit before the next slot",
            frozenset({"linh-thong", "lam-vy"}),
        )
    ]


def test_the_gap_between_items_counts_as_it_does_when_publishing():
    start, following = local("06:00"), local("06:00") + timedelta(seconds=11.2)
    plan = [
        occ("p", "loudspeaker", "05437", start, "normal", ["ban-tin"]),
        occ("q", "loudspeaker", "05437", following, "normal", ["gian-cach"]),
    ]
    registry = _registry()
    assert find_drops(plan, registry, Layout(small_library(), "chime", 0.0, 7200), TZ) == []
    [drop] = find_drops(plan, registry, Layout(small_library(), "chime", 0.5, 7200), TZ)
    assert (drop.programme, drop.stations) == ("p", frozenset({"cho-chu"}))
