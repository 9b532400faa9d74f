"""A standby fences a leader only after the same lock holder stayed silent for `after`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broadcaster.fencing import LeaderWatch

BEAT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def test_the_same_holder_with_the_same_heartbeat_for_the_whole_wait_is_stalled() -> None:
    watch = LeaderWatch(after=15.0)
    assert not watch.stalled(4242, BEAT, 100.0)
    assert not watch.stalled(4242, BEAT, 114.9)
    assert watch.stalled(4242, BEAT, 115.0)


def test_a_new_heartbeat_or_a_new_holder_starts_the_count_again() -> None:
    watch = LeaderWatch(after=15.0)
    watch.stalled(4242, BEAT, 100.0)
    assert not watch.stalled(4242, BEAT + timedelta(seconds=2), 114.0)  # it beats
    assert not watch.stalled(4242, BEAT + timedelta(seconds=2), 128.0)
    assert not watch.stalled(5151, BEAT + timedelta(seconds=2), 130.0)  # another took over
    assert watch.stalled(5151, BEAT + timedelta(seconds=2), 145.0)


def test_a_leader_that_took_over_before_writing_its_first_status_is_not_silent() -> None:
    """The status row still shows the old leader's last beat, minutes old: the count
    starts when this standby first sees the new holder, not at that old beat."""
    watch = LeaderWatch(after=15.0)
    old = BEAT - timedelta(minutes=10)
    assert not watch.stalled(None, old, 100.0)  # free: the standby takes it itself
    assert not watch.stalled(7070, old, 101.0)
    assert not watch.stalled(7070, BEAT, 102.0)  # its first status


def test_a_free_lock_forgets_the_holder() -> None:
    watch = LeaderWatch(after=15.0)
    watch.stalled(4242, BEAT, 100.0)
    assert not watch.stalled(None, BEAT, 110.0)
    assert not watch.stalled(4242, BEAT, 116.0)  # seen again: counted from now
