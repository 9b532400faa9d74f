"""The pure playlist builder: order, languages, fitting, emergencies, van rounds."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from broadcaster.audio.library import ClipKind
from broadcaster.audio.playlist import EntryKind, playlist, van_rounds, with_recordings
from broadcaster.occurrence import Channel, Occurrence, Priority, Relay, SmsText
from tests.audio_fixtures import TZ, clip, commune, local, occ, small_library

DAY = date(2021, 9, 1)


def _ids(slot):
    return [
        (e.clip.id, e.clip.language) if e.clip else ("relay", e.relay.name) for e in slot.entries
    ]


def test_slot_opens_with_chime_then_items_by_priority_each_vietnamese_first():
    occs = [
        occ("routine", "loudspeaker", "05440", local("06:00"), "normal", ["gian-cach"]),
        occ("district", "loudspeaker", "05440", local("06:00"), "priority", ["ban-tin"]),
    ]
    [slot] = playlist(commune(), DAY, occs, small_library(), tz=TZ)
    assert _ids(slot) == [
        ("chime", "zxx"),
        ("ban-tin", "vi"),
        ("ban-tin", "tyz"),
        ("ban-tin", "ium"),
        ("gian-cach", "vi"),
    ]
    assert slot.id == "0600"
    assert [e.priority for e in slot.entries[1:]] == [Priority.PRIORITY] * 3 + [Priority.NORMAL]


def test_variants_only_in_the_communes_languages():
    occs = [occ("p", "loudspeaker", "05443", local("06:00"), content=["gian-cach", "ban-tin"])]
    [slot] = playlist(commune("05443", ("vi", "tyz")), DAY, occs, small_library(), tz=TZ)
    assert _ids(slot)[1:] == [("gian-cach", "vi"), ("ban-tin", "vi"), ("ban-tin", "tyz")]


def test_offsets_count_chime_items_and_gaps():
    occs = [occ("p", "loudspeaker", "05443", local("06:00"), content=["ban-tin"])]
    [slot] = playlist(commune("05443", ("vi", "tyz")), DAY, occs, small_library(), tz=TZ, gap=0.5)
    assert [(e.offset, e.duration) for e in slot.entries] == [(0.0, 1.0), (1.5, 10.0), (12.0, 8.0)]
    assert slot.duration == 20.0


def test_slot_never_overruns_the_next_and_reports_what_it_dropped():
    occs = [
        occ("long", "loudspeaker", "05440", local("06:00"), "normal", ["gian-cach", "ban-tin"]),
        occ(
            "next",
            "loudspeaker",
            "05440",
            local("06:00") + timedelta(seconds=20),
            "normal",
            ["gian-cach"],
        ),
    ]
    first, second = playlist(commune(), DAY, occs, small_library(), tz=TZ)
    assert first.end == second.start
    assert first.duration <= 20
    assert _ids(first) == [("chime", "zxx"), ("gian-cach", "vi"), ("ban-tin", "vi")]
    assert {(d.item, d.language) for d in first.dropped} == {("ban-tin", "tyz"), ("ban-tin", "ium")}
    assert all(d.reason == "does not fit before the next slot" for d in first.dropped)


def test_missing_clip_is_reported_not_aired():
    occs = [occ("p", "loudspeaker", "05440", local("06:00"), content=["nope", "gian-cach"])]
    [slot] = playlist(commune(), DAY, occs, small_library(), tz=TZ)
    assert _ids(slot) == [("chime", "zxx"), ("gian-cach", "vi")]
    assert [(d.programme, d.item) for d in slot.dropped] == [("p", "nope")]


def test_clip_outside_its_validity_dates_is_not_aired():
    library = small_library().with_clips((clip("old", "vi", 3.0, valid_until=date(2021, 8, 31)),))
    occs = [occ("p", "loudspeaker", "05440", local("06:00"), content=["old", "gian-cach"])]
    [slot] = playlist(commune(), DAY, occs, library, tz=TZ)
    assert ("old", "vi") not in _ids(slot)


def test_emergency_during_a_slot_goes_to_its_head_and_airs_from_then():
    start = local("06:00")
    occs = [
        occ("routine", "loudspeaker", "05440", start, "normal", ["ban-tin"]),
        occ("notice", "loudspeaker", "05440", start + timedelta(seconds=5), "emergency", ["khan"]),
    ]
    [slot] = playlist(commune(), DAY, occs, small_library(), tz=TZ)
    assert slot.id == "0600"
    assert slot.start == start + timedelta(seconds=5)
    assert _ids(slot)[:2] == [("chime", "zxx"), ("khan", "vi")]
    assert slot.entries[0].priority is Priority.EMERGENCY


def test_emergency_between_slots_is_a_slot_of_its_own():
    occs = [
        occ("routine", "loudspeaker", "05440", local("06:00"), "normal", ["gian-cach"]),
        occ("notice", "loudspeaker", "05440", local("09:13"), "emergency", ["khan"]),
    ]
    slots = playlist(commune(), DAY, occs, small_library(), tz=TZ)
    assert [s.id for s in slots] == ["0600", "0913"]
    assert _ids(slots[1]) == [("chime", "zxx"), ("khan", "vi")]


def test_relay_appears_with_its_stream_length_and_fallback_clip():
    vov = Relay("vov", "http://vov/live", "gian-cach")
    occs = [occ("vov", "relay", "167", local("11:00"), "normal", vov, timedelta(minutes=15))]
    [slot] = playlist(
        commune("05443", ("tyz", "nut")), DAY, occs, small_library(), tz=TZ, covering=["167"]
    )
    relay = slot.entries[-1]
    assert (relay.kind, relay.relay, relay.duration) == (EntryKind.RELAY, vov, 900.0)
    assert (relay.fallback.id, relay.fallback.language) == ("gian-cach", "vi")


def test_relay_that_outlasts_the_gap_to_the_next_slot_is_dropped_whole():
    vov = Relay("vov", "http://vov/live", "gian-cach")
    occs = [
        occ("vov", "relay", "05440", local("06:00"), "priority", vov, timedelta(minutes=30)),
        occ("own", "loudspeaker", "05440", local("06:30"), "normal", ["ban-tin"]),
    ]
    first, _ = playlist(commune(), DAY, occs, small_library(), tz=TZ, gap=0.5)
    assert _ids(first) == [("chime", "zxx")]
    assert [(d.programme, d.item, d.reason) for d in first.dropped] == [
        ("vov", "vov", "does not fit before the next slot")
    ]


def test_a_recording_replaces_the_relay_of_its_programme_and_instant_only():
    vov = Relay("vov", "http://vov/live", "gian-cach")
    recorded = clip(
        "vov-0906", "vi", 12.0, ClipKind.RECORDING, for_programme="vov", airs_at=local("06:00")
    )
    library = small_library().with_clips((recorded,))
    occs = [
        occ("vov", "relay", "05440", local("06:00"), "priority", vov, timedelta(minutes=30)),
        occ("vov", "relay", "05440", local("11:00"), "priority", vov, timedelta(minutes=30)),
        occ("other", "relay", "05440", local("17:00"), "priority", vov, timedelta(minutes=30)),
    ]
    slots = playlist(commune(), DAY, with_recordings(occs, library), library, tz=TZ)
    assert [_ids(s)[1:] for s in slots] == [
        [("vov-0906", "vi")],
        [("relay", "vov")],
        [("relay", "vov")],
    ]


def test_occurrences_of_other_communes_and_days_are_left_out_but_bound_the_last_slot():
    occs = [
        occ("p", "loudspeaker", "05440", local("23:59"), content=["ban-tin"]),
        occ("p", "loudspeaker", "05443", local("06:00"), content=["ban-tin"]),
        occ("p", "loudspeaker", "05440", local("00:00", day=2), content=["gian-cach"]),
        Occurrence("sms", Channel.SMS, "05440", local("07:00"), Priority.NORMAL, SmsText("hello")),
    ]
    [slot] = playlist(commune(), DAY, occs, small_library(), tz=TZ)
    assert slot.end == local("00:00", day=2)
    assert slot.duration <= 60


def test_naive_occurrence_time_is_rejected():
    with pytest.raises(ValueError, match="naive"):
        occ("p", "loudspeaker", "05440", datetime(2021, 9, 1, 6), content=["ban-tin"])


def test_van_round_loops_in_every_route_language_and_lists_the_route():
    route = [commune("05440", ("vi", "tyz")), commune("05455", ("vi", "tyz", "nut"))]
    district = commune("167", ())
    occs = [
        occ("van", "van", "167", local("08:00"), "normal", ["gian-cach"], timedelta(minutes=2)),
        occ("van", "van", "167", local("15:00"), "normal", ["gian-cach"]),
    ]
    rounds = van_rounds(district, route, DAY, occs, small_library(), tz=TZ, round_seconds=600)
    assert [r.id for r in rounds] == ["0800", "1500"]
    first = rounds[0]
    assert first.route == ("05440", "05455")
    assert [(e.clip.id, e.clip.language) for e in first.loop] == [
        ("chime", "zxx"),
        ("gian-cach", "vi"),
        ("gian-cach", "nut"),
    ]
    assert first.repeat == 120 // 11
    assert rounds[1].repeat == 600 // 11
