"""Station health, as-run gaps and the daily report, as pure functions."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from broadcaster.asrun import Aired, gaps
from broadcaster.report.daily import CommuneInput, VanReport, as_csv, as_html, daily_report
from broadcaster.station.plan import cues
from broadcaster.station_health import StationState, Thresholds, away_periods, state_of
from tests.test_station_plan import T0, day, item, slot

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
LIMITS = Thresholds(timedelta(seconds=90), timedelta(minutes=5))


def test_a_station_is_online_then_late_then_offline_by_the_thresholds() -> None:
    seen = T0
    assert state_of(seen, seen + timedelta(seconds=89), LIMITS) is StationState.ONLINE
    assert state_of(seen, seen + timedelta(seconds=90), LIMITS) is StationState.LATE
    assert state_of(seen, seen + timedelta(minutes=5), LIMITS) is StationState.OFFLINE
    assert state_of(None, seen, LIMITS) is StationState.OFFLINE


def test_offline_stretches_are_the_silences_longer_than_the_threshold() -> None:
    start, end = T0, T0 + timedelta(hours=1)
    beats = [start + timedelta(seconds=30 * n) for n in range(10)]  # 0..4.5 min
    beats += [start + timedelta(minutes=20), start + timedelta(minutes=20, seconds=30)]
    away = away_periods(beats, start, end, LIMITS, before=start - timedelta(seconds=10))
    assert [(a.since - start, a.until - start) for a in away] == [
        (timedelta(minutes=4, seconds=30), timedelta(minutes=20)),
        (timedelta(minutes=20, seconds=30), timedelta(hours=1)),
    ]


def test_gaps_are_the_passed_items_without_a_finished_report() -> None:
    planned = cues(
        [
            day(
                slot(
                    "0600",
                    T0,
                    30,
                    [item("a", 0, 5), item("b", 6, 5), item("a", 12, 5), item("c", 40, 5)],
                )
            )
        ]
    )
    reports = [Aired("2026-12-01", "0600", "a.vi"), Aired(None, "0600", "b.vi")]
    found = gaps("s", planned, reports, T0 + timedelta(seconds=30), "2026-12-01")
    assert [(g.item, g.at - T0) for g in found] == [("a.vi", timedelta(seconds=12))]


def test_the_daily_report_counts_planned_aired_and_missed_by_programme() -> None:
    planned = cues([day(slot("0600", T0, 30, [item("a", 0, 5), item("b", 6, 5)]))])
    missed = gaps(
        "s", planned, [Aired("2026-12-01", "0600", "a.vi")], T0 + timedelta(hours=1), "2026-12-01"
    )
    away = away_periods([], T0, T0 + timedelta(hours=1), LIMITS)
    report = daily_report(
        ("167", "Huyện Định Hóa"),
        "2026-12-01",
        T0 + timedelta(hours=1),
        [CommuneInput("05440", "Xã Linh Thông", "s", planned, missed, away)],
        [VanReport("van-167", 2, 1)],
        {"viettel": {"submitted": 10, "delivered": 8, "failed": 1}},
    )
    (commune,) = report.communes
    assert [(p.programme, p.planned, p.aired, p.missed) for p in commune.programmes] == [
        ("p", 2, 1, 1)
    ]
    assert report.sms[0].counts == {"submitted": 10, "delivered": 8, "failed": 1, "expired": 0}
    page = as_html(report, TZ)
    assert "Xã Linh Thông" in page and "Không phát" in page and "1 giờ 0 phút" in page
    assert "programme,05440,Xã Linh Thông,s,p,2,1,1" in as_csv(report, TZ)
