"""Notices in the database: retraction is recorded once, and what stations may still hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broadcaster.store.audio import (
    NoticeState,
    approve_notice,
    create_notice,
    live_notices,
    notices_marker,
    recent_notices,
    retract_notice,
)

NOW = datetime(2021, 9, 5, 3, 0, tzinfo=UTC)


def _notice(engine, *, at=NOW, needs_approval=False):
    return create_notice(
        engine,
        areas=["05440"],
        text="Khẩn",
        clip_file="x.wav",
        clip_sha256="0" * 64,
        duration=4.0,
        by="An",
        now=at,
        needs_approval=needs_approval,
    )


def test_retraction_records_who_and_when_and_leaves_the_live_set(engine):
    notice = _notice(engine)
    before = notices_marker(engine)
    retracted = retract_notice(engine, notice.id, by="Chi", now=NOW + timedelta(minutes=3))
    assert (retracted.state, retracted.retracted_by) == (NoticeState.RETRACTED, "Chi")
    assert retracted.retracted_at == NOW + timedelta(minutes=3)
    assert live_notices(engine, since=NOW - timedelta(days=1)) == []
    assert notices_marker(engine) != before
    with pytest.raises(ValueError, match="already retracted by Chi"):
        retract_notice(engine, notice.id, by="An", now=NOW)
    with pytest.raises(ValueError, match="must name the operator"):
        retract_notice(engine, notice.id, by=" ", now=NOW)


def test_a_go_live_and_a_retraction_never_leave_the_marker_unchanged(engine):
    first = _notice(engine)
    pending = _notice(engine, needs_approval=True)
    before = notices_marker(engine)
    approve_notice(engine, pending.id, by="Bình", now=NOW)
    retract_notice(engine, first.id, by="Chi", now=NOW)
    assert notices_marker(engine) != before  # one more live, one fewer: counts alone would tie


def test_recent_notices_go_by_when_they_aired_not_when_drafted(engine):
    drafted_long_ago = _notice(engine, at=NOW - timedelta(hours=30), needs_approval=True)
    approve_notice(engine, drafted_long_ago.id, by="Bình", now=NOW - timedelta(hours=2))
    _notice(engine, at=NOW - timedelta(hours=30))
    assert [n.id for n in recent_notices(engine, NOW - timedelta(days=1))] == [drafted_long_ago.id]
