"""Tables and queries of station health: heartbeats and the last poll of each station.

Every heartbeat is kept (a row per station per 30 s, pruned with the as-run
log's days) because the daily report needs the gaps between them, not just
the latest; the last poll is one row per station, written at most every few
seconds, so a station that only fetches playlists is still seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, CursorResult, Engine, Index, String, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.store.db import session_scope
from broadcaster.store.models import Base
from broadcaster.store.types import UTCDateTime


class HeartbeatRow(Base):
    """One heartbeat a station agent sent: its state at `at`."""

    __tablename__ = "station_heartbeats"
    __table_args__ = (Index("ix_station_heartbeats_station_at", "station", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    station: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[str] = mapped_column(String(64))
    cache_until: Mapped[str | None] = mapped_column(String(10))
    disk_free: Mapped[int | None] = mapped_column(BigInteger)
    player: Mapped[str] = mapped_column(String(32))
    last_item: Mapped[str | None] = mapped_column(String(256))
    last_aired: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PollRow(Base):
    """When a station last fetched anything from the centre."""

    __tablename__ = "station_polls"

    station: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class Heartbeat:
    station: str
    at: datetime
    version: str
    cache_until: str | None
    disk_free: int | None
    player: str
    last_item: str | None
    last_aired: datetime | None


def record_heartbeat(engine: Engine, beat: Heartbeat) -> None:
    with session_scope(engine) as session:
        session.add(HeartbeatRow(**beat.__dict__))
    record_polls(engine, {beat.station: beat.at})


def record_polls(engine: Engine, seen: dict[str, datetime]) -> None:
    """Move each station's last poll forward (never back), one upsert per station."""
    if not seen:
        return
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with session_scope(engine) as session:
        for station, at in seen.items():
            stmt = insert(PollRow).values(station=station, at=at)
            stmt = stmt.on_conflict_do_update(
                index_elements=["station"],
                set_={"at": func.max(PollRow.at, stmt.excluded.at)}
                if engine.dialect.name == "sqlite"
                else {"at": func.greatest(PollRow.at, stmt.excluded.at)},
            )
            session.execute(stmt)


def last_polls(engine: Engine) -> dict[str, datetime]:
    with session_scope(engine) as session:
        return {station: at for station, at in session.execute(select(PollRow.station, PollRow.at))}


def latest_heartbeats(engine: Engine) -> dict[str, Heartbeat]:
    """Each station's newest heartbeat."""
    newest = (
        select(HeartbeatRow.station, func.max(HeartbeatRow.id).label("id"))
        .group_by(HeartbeatRow.station)
        .subquery()
    )
    query = select(HeartbeatRow).join(newest, HeartbeatRow.id == newest.c.id)
    with session_scope(engine) as session:
        return {r.station: _beat(r) for r in session.scalars(query)}


def heartbeat_times(
    engine: Engine, since: datetime, until: datetime, stations: Iterable[str] | None = None
) -> dict[str, list[datetime]]:
    """When each station beat between `since` and `until`, in order."""
    query = (
        select(HeartbeatRow.station, HeartbeatRow.at)
        .where(HeartbeatRow.at >= since, HeartbeatRow.at < until)
        .order_by(HeartbeatRow.station, HeartbeatRow.at)
    )
    if stations is not None:
        query = query.where(HeartbeatRow.station.in_(list(stations)))
    found: dict[str, list[datetime]] = {}
    with session_scope(engine) as session:
        for station, at in session.execute(query):
            found.setdefault(station, []).append(at)
    return found


def prune_heartbeats(engine: Engine, before: datetime) -> int:
    with session_scope(engine) as session:
        result = session.execute(delete(HeartbeatRow).where(HeartbeatRow.at < before))
        return int(cast(CursorResult[Any], result).rowcount)


def _beat(r: HeartbeatRow) -> Heartbeat:
    return Heartbeat(
        r.station,
        r.at,
        r.version,
        r.cache_until,
        r.disk_free,
        r.player,
        r.last_item,
        r.last_aired,
    )
