"""What the slot layout drops maps back to the plan's occurrences (the timeline's red)."""

from __future__ import annotations

from datetime import UTC, datetime

from broadcaster.audio.publish import loudness_target
from broadcaster.audio.render import normalised_key
from broadcaster.clashes import Drop
from broadcaster.dropped import drops_by_occurrence, slot_layout
from broadcaster.store import published
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


def test_every_node_lays_slots_out_with_the_durations_any_node_rendered(tmp_path, engine):
    """A node that never normalised a clip (its own cache empty) still lays slots out with
    the trimmed duration another node aired, read from `published_renders`."""
    node = settings().model_copy(update={"data_dir": tmp_path / "node-b"})
    clip = slot_layout(node, None).library.clips[0]
    key = normalised_key(clip.sha256, loudness_target(node.audio))
    trimmed = round(clip.duration - 0.75, 3)
    published.remember_render(
        engine, key, {"sha256": "ab" * 32, "duration": trimmed, "lufs": -16.0, "true_peak": -1.0}
    )
    shared = {c.sha256: c.duration for c in slot_layout(node, engine).library.clips}
    assert shared[clip.sha256] == trimmed
    assert {c.sha256: c.duration for c in slot_layout(node, None).library.clips}[
        clip.sha256
    ] == clip.duration  # its own cache knows nothing: the catalogue's duration
