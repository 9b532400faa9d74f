"""Gather what the station health, as-run gaps and daily report need from the store.

The imperative shell around `health`, `asrun` and `report.daily`: reads the
published days, the as-run log, heartbeats and SMS rows, and hands plain
values to the pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, case, func, select

from broadcaster.areas import AreaKind
from broadcaster.asrun import Aired, Gap, gaps
from broadcaster.audio.publish import VAN_PREFIX, Publisher, day_document, publisher, stations
from broadcaster.cadence import parse_duration
from broadcaster.report.daily import CommuneInput, DailyReport, VanReport, daily_report
from broadcaster.station.plan import BadDay, Cue, cues
from broadcaster.station_health import Thresholds, away_periods, last_seen, state_of
from broadcaster.store.audio import load_asrun
from broadcaster.store.db import session_scope
from broadcaster.store.sms import MessageRow
from broadcaster.store.stations import (
    HeartbeatRow,
    heartbeat_times,
    last_polls,
    latest_heartbeats,
)

if TYPE_CHECKING:
    from broadcaster.config import Settings


HEALTH_FIELDS = (
    "last_seen",
    "state",
    "cache_until",
    "last_aired",
    "last_aired_at",
    "player",
    "version",
)


def thresholds(settings: Settings) -> Thresholds:
    s = settings.stations
    return Thresholds(parse_duration(s.late_after), parse_duration(s.offline_after))


def station_health(settings: Settings, engine: Engine, now: datetime) -> dict[str, dict[str, Any]]:
    """Each station's last_seen, state, cache_until and last item aired, by station code."""
    beats = latest_heartbeats(engine)
    polls = last_polls(engine)
    limits = thresholds(settings)
    found = {}
    for code in stations(settings.registry()):
        beat = beats.get(code)
        seen = last_seen(beat.at if beat else None, polls.get(code))
        found[code] = {
            "last_seen": seen,
            "state": state_of(seen, now, limits).value,
            "cache_until": beat.cache_until if beat else None,
            "last_aired": beat.last_item if beat else None,
            "last_aired_at": beat.last_aired if beat else None,
            "player": beat.player if beat else None,
            "version": beat.version if beat else None,
        }
    return found


def planned(pub: Publisher, station: str, day: date) -> tuple[Cue, ...]:
    """A station's published cues for a day; none when nothing is published (or kept)."""
    doc = day_document(pub, station, day)
    if doc is None:
        return ()
    try:
        return cues([doc])
    except BadDay:
        return ()


def aired(engine: Engine, station: str | None, day: date, settings: Settings) -> list[Any]:
    """Reports of a local day: those naming the day, and plain players' by start time."""
    tz = settings.tz
    start = datetime.combine(day, time(), tz)
    end = datetime.combine(day + timedelta(days=1), time(), tz)
    named = load_asrun(engine, station, day=day.isoformat())
    bare = [r for r in load_asrun(engine, station, start, end) if r.day is None]
    return [*named, *bare]


@dataclass(frozen=True)
class StationGaps:
    station: str
    published: bool
    gaps: tuple[Gap, ...]


def day_gaps(
    settings: Settings, engine: Engine, day: date, now: datetime, only: Iterable[str] | None = None
) -> list[StationGaps]:
    """Per station, the planned items of `day` no report says aired."""
    pub = publisher(settings, engine)
    wanted = set(only) if only is not None else None
    found = []
    for code in stations(settings.registry()):
        if wanted is not None and code not in wanted:
            continue
        cue_list = planned(pub, code, day)
        reports = [
            Aired(r.day, r.slot, r.item) for r in aired(engine, code, day, settings) if r.aired
        ]
        found.append(
            StationGaps(
                code, bool(cue_list), tuple(gaps(code, cue_list, reports, now, day.isoformat()))
            )
        )
    return found


def sms_by_carrier(engine: Engine, start: datetime, end: datetime) -> dict[str, dict[str, int]]:
    """Messages queued in [start, end) by carrier: submitted, delivered, failed, expired."""
    query = (
        select(
            MessageRow.carrier,
            func.count(MessageRow.submitted_at),
            *(
                func.sum(case((MessageRow.state == s, 1), else_=0))
                for s in ("delivered", "failed", "expired")
            ),
        )
        .where(MessageRow.queued_at >= start, MessageRow.queued_at < end)
        .group_by(MessageRow.carrier)
    )
    with session_scope(engine) as session:
        return {
            carrier or "": {
                "submitted": int(sub),
                "delivered": int(d or 0),
                "failed": int(f or 0),
                "expired": int(x or 0),
            }
            for carrier, sub, d, f, x in session.execute(query)
        }


def last_beat_before(engine: Engine, station: str, moment: datetime) -> datetime | None:
    with session_scope(engine) as session:
        return session.scalar(
            select(func.max(HeartbeatRow.at)).where(
                HeartbeatRow.station == station,
                HeartbeatRow.at < moment,
                HeartbeatRow.at >= moment - timedelta(days=1),
            )
        )


def build_daily(
    settings: Settings, engine: Engine, district: str, day: date, now: datetime
) -> DailyReport:
    """Gather one district's day and build its report."""
    registry = settings.registry()
    area = registry.get(district)
    if area.kind is not AreaKind.DISTRICT:
        raise ValueError(f"{district} is a {area.kind.value}, not a district")
    tz = settings.tz
    start = datetime.combine(day, time(), tz)
    end = min(datetime.combine(day + timedelta(days=1), time(), tz), now)
    communes = [c for c in registry.communes_under(district)]
    codes = [c.station.code for c in communes if c.station]
    holes = {g.station: g.gaps for g in day_gaps(settings, engine, day, now, codes)}
    beats = heartbeat_times(engine, start, end, codes)
    limits = thresholds(settings)
    pub = publisher(settings, engine)
    inputs = []
    for c in communes:
        code = c.station.code if c.station else None
        away = (
            away_periods(
                beats.get(code, []), start, end, limits, last_beat_before(engine, code, start)
            )
            if code
            else []
        )
        inputs.append(
            CommuneInput(
                c.code,
                c.name,
                code,
                planned(pub, code, day) if code else (),
                holes.get(code or "", ()),
                away,
            )
        )
    van = VAN_PREFIX + district
    van_slots = {q.slot for q in planned(pub, van, day)}
    van_aired = {r.slot for r in aired(engine, van, day, settings) if r.aired}
    vans = [VanReport(van, len(van_slots), len(van_slots & van_aired))]
    sms = sms_by_carrier(engine, start, end)
    return daily_report((district, area.name), day.isoformat(), now, inputs, vans, sms)
