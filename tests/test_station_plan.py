"""The agent's pure core: day documents to cues, and which cue airs now."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from broadcaster.station.plan import BadDay, choose, cues, next_due

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 12, 1, 6, 0, tzinfo=TZ)


def item(clip: str, offset: float, duration: float, priority: str = "normal") -> dict:
    return {
        "kind": "clip",
        "clip": clip,
        "language": "vi",
        "programme": "p",
        "priority": priority,
        "offset": offset,
        "duration": duration,
        "air_time": (T0 + timedelta(seconds=offset)).isoformat(),
        "sha256": "a" * 64,
        "url": f"http://c/stations/s/audio/{'a' * 64}.mp3?token=t",
    }


def day(*slots: dict) -> dict:
    return {"station": "s", "date": "2026-12-01", "slots": list(slots)}


def slot(slot_id: str, start: datetime, duration: float, items: list[dict]) -> dict:
    return {"slot": slot_id, "start": start.isoformat(), "duration": duration, "items": items}


def test_cues_are_named_by_day_slot_and_item_so_a_republished_day_keeps_them() -> None:
    doc = day(slot("0600", T0, 20, [item("a", 0, 5), item("b", 5.5, 5), item("a", 11, 5)]))
    assert [c.key for c in cues([doc])] == [
        "2026-12-01/0600/a.vi#1",
        "2026-12-01/0600/b.vi#1",
        "2026-12-01/0600/a.vi#2",
    ]


def test_the_earliest_due_cue_not_yet_aired_plays() -> None:
    planned = cues([day(slot("0600", T0, 20, [item("a", 0, 5), item("b", 5.5, 5)]))])
    assert choose(planned, T0 - timedelta(seconds=1), set()) is None
    assert choose(planned, T0, set()).item == "a.vi"
    assert choose(planned, T0 + timedelta(seconds=2), {planned[0].key}) is None
    assert choose(planned, T0 + timedelta(seconds=6), {planned[0].key}).item == "b.vi"
    assert next_due(planned, T0 + timedelta(seconds=1), {planned[0].key}) == planned[1].at


def test_an_emergency_due_goes_before_items_waiting() -> None:
    planned = cues(
        [
            day(
                slot(
                    "0600",
                    T0,
                    30,
                    [item("khan", 0, 5, "emergency"), item("a", 0, 5), item("b", 5.5, 5)],
                )
            )
        ]
    )
    now = T0 + timedelta(seconds=8)
    assert choose(planned, now, {"2026-12-01/0600/b.vi#1"}).item == "khan.vi"


def test_a_late_item_may_start_until_the_next_slot_begins_but_not_after() -> None:
    doc = day(
        slot("0600", T0, 10, [item("a", 0, 5), item("b", 5, 5)]),
        slot("0601", T0 + timedelta(seconds=60), 10, []),
    )
    planned = cues([doc])
    assert choose(planned, T0 + timedelta(seconds=59), {planned[0].key}).item == "b.vi"
    assert choose(planned, T0 + timedelta(seconds=60), {planned[0].key}) is None


@pytest.mark.parametrize(
    "broken",
    [
        {"date": "2026-12-01"},
        {"date": "2026-12-01", "slots": [{"slot": "0600", "items": "x"}]},
        day(slot("0600", T0, 10, [{**item("a", 0, 5), "sha256": "zz"}])),
        day(slot("0600", T0, 10, [{**item("a", 0, 5), "air_time": "06:00"}])),
        day(slot("0600", T0, 10, [{**item("a", 0, 5), "duration": -1}])),
    ],
)
def test_a_malformed_day_is_refused_whole_with_the_reason(broken: dict) -> None:
    with pytest.raises(BadDay):
        cues([broken])


def test_a_relay_without_a_url_has_no_source_and_keeps_its_fallback() -> None:
    relay = {
        "kind": "relay",
        "programme": "vov",
        "priority": "normal",
        "offset": 0,
        "duration": 900,
        "air_time": T0.isoformat(),
        "source": "district:167",
        "fallback": item("tiep-song", 0, 3),
    }
    (cue,) = cues([day(slot("0600", T0, 900, [relay]))])
    assert cue.source is None and cue.live and cue.fallback.name == "tiep-song.vi"


def test_an_item_moved_to_a_notice_slot_is_the_same_item_still_playing() -> None:
    from broadcaster.station.plan import carried_over

    before = cues([day(slot("0600", T0, 60, [item("long", 0, 50)]))])
    notice_at = T0 + timedelta(seconds=20)
    after = cues(
        [
            day(
                slot(
                    "0600-1",
                    notice_at,
                    60,
                    [item("khan", 20, 3, "emergency"), item("long", 23.5, 50)],
                )
            )
        ]
    )
    moved = carried_over(before[0], after, set(), notice_at)
    assert moved is not None and moved.key == "2026-12-01/0600-1/long.vi#1"
    assert carried_over(before[0], after, {moved.key}, notice_at) is None
