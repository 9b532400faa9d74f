"""Reports, heartbeats and polls in the real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broadcaster.store.audio import AsRun, AsRunEvent, load_asrun, record_asrun
from broadcaster.store.stations import (
    Heartbeat,
    heartbeat_times,
    last_polls,
    latest_heartbeats,
    record_heartbeat,
    record_polls,
)

T = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def report(report_id: str | None, item: str = "a.vi") -> AsRun:
    return AsRun(
        "linh-thong",
        "0600",
        item,
        T,
        T + timedelta(seconds=5),
        T,
        report_id,
        AsRunEvent.FINISHED,
        "2026-12-01",
        "p",
        None,
    )


def test_a_report_sent_twice_is_stored_once(engine) -> None:
    assert record_asrun(engine, [report("r-000001"), report("r-000002", "b.vi")]) == 2
    assert record_asrun(engine, [report("r-000001"), report("r-000001")]) == 0
    assert record_asrun(engine, [report(None), report(None)]) == 2  # plain players have no id
    rows = load_asrun(engine, day="2026-12-01")
    assert sorted(r.report_id or "-" for r in rows) == ["-", "-", "r-000001", "r-000002"]
    assert all(r.aired for r in rows)


def test_polls_only_move_forward_and_heartbeats_keep_their_history(engine) -> None:
    record_polls(engine, {"linh-thong": T})
    record_polls(engine, {"linh-thong": T - timedelta(minutes=1), "cho-chu": T})
    assert last_polls(engine) == {"linh-thong": T, "cho-chu": T}
    for n in range(3):
        record_heartbeat(
            engine,
            Heartbeat(
                "cho-chu",
                T + timedelta(seconds=30 * n),
                "1.0",
                "2026-12-02",
                10**9,
                "idle",
                "a.vi",
                T,
            ),
        )
    assert latest_heartbeats(engine)["cho-chu"].at == T + timedelta(seconds=60)
    assert heartbeat_times(engine, T, T + timedelta(minutes=1))["cho-chu"] == [
        T,
        T + timedelta(seconds=30),
    ]
    assert last_polls(engine)["cho-chu"] == T + timedelta(seconds=60)
