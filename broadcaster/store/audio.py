"""Tables and queries of the loudspeaker side: as-run reports and emergency notices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Engine,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.store.db import Bind, session_scope
from broadcaster.store.models import Base
from broadcaster.store.types import UTCDateTime


class NoticeState(StrEnum):
    PENDING = "pending"
    LIVE = "live"
    RETRACTED = "retracted"  # final: off every station's next poll, kept for the record


class AsRunEvent(StrEnum):
    """What a station agent reports of one item: it started, ended, was cut, or could not."""

    STARTED = "started"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


class AsRunRow(Base):
    """One playback a station reported: what it aired, from when to when.

    An agent's reports carry an id it chose, unique here, so a report sent
    again after a lost answer is stored once.
    """

    __tablename__ = "audio_asrun"
    __table_args__ = (
        Index("ix_audio_asrun_station_started", "station", "started"),
        UniqueConstraint("report_id", name="uq_audio_asrun_report_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    station: Mapped[str] = mapped_column(String(64))
    slot: Mapped[str | None] = mapped_column(String(64))
    item: Mapped[str] = mapped_column(String(256))
    started: Mapped[datetime] = mapped_column(UTCDateTime())
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received: Mapped[datetime] = mapped_column(UTCDateTime())
    report_id: Mapped[str | None] = mapped_column(String(64))
    event: Mapped[str | None] = mapped_column(String(16))
    day: Mapped[str | None] = mapped_column(String(10))
    programme: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)


class NoticeRow(Base):
    """An emergency notice for loudspeakers: what, where, who drafted and approved it."""

    __tablename__ = "audio_notices"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    areas: Mapped[str] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    clip_file: Mapped[str] = mapped_column(Text)
    clip_sha256: Mapped[str] = mapped_column(String(64))
    duration: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(128))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retracted_by: Mapped[str | None] = mapped_column(String(128))
    retracted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_account: Mapped[int | None] = mapped_column(Integer)
    approved_by_account: Mapped[int | None] = mapped_column(Integer)


@dataclass(frozen=True)
class AsRun:
    """A playback report as stored; `event` is None for a plain player's bare report."""

    station: str
    slot: str | None
    item: str
    started: datetime
    finished: datetime | None
    received: datetime
    report_id: str | None = None
    event: AsRunEvent | None = None
    day: str | None = None
    programme: str | None = None
    reason: str | None = None

    @property
    def aired(self) -> bool:
        """Whether this report says the item aired to its end."""
        if self.event is None:
            return self.finished is not None
        return self.event is AsRunEvent.FINISHED


@dataclass(frozen=True)
class Notice:
    id: int
    areas: tuple[str, ...]
    text: str | None
    clip_file: str
    clip_sha256: str
    duration: float
    state: NoticeState
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    retracted_by: str | None = None
    retracted_at: datetime | None = None

    @property
    def airs_at(self) -> datetime:
        """A notice airs when it goes live: on approval, or at once when none is needed."""
        return self.approved_at or self.created_at


def record_asrun(engine: Engine, reports: Sequence[AsRun]) -> int:
    """Store reports, skipping any whose id is stored already; return how many were new."""
    if not reports:
        return 0
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    rows = [
        {
            "station": r.station,
            "slot": r.slot,
            "item": r.item,
            "started": r.started,
            "finished": r.finished,
            "received": r.received,
            "report_id": r.report_id,
            "event": r.event.value if r.event else None,
            "day": r.day,
            "programme": r.programme,
            "reason": r.reason,
        }
        for r in reports
    ]
    with session_scope(engine) as session:
        stmt = (
            insert(AsRunRow)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["report_id"])
            .returning(AsRunRow.id)
        )
        return len(session.execute(stmt).all())


def load_asrun(
    engine: Engine,
    station: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    day: str | None = None,
) -> list[AsRun]:
    """Reports by start time, or (`day`) those of slots of that local day."""
    query = select(AsRunRow).order_by(AsRunRow.started, AsRunRow.id)
    if station is not None:
        query = query.where(AsRunRow.station == station)
    if since is not None:
        query = query.where(AsRunRow.started >= since)
    if until is not None:
        query = query.where(AsRunRow.started < until)
    if day is not None:
        query = query.where(AsRunRow.day == day)
    with session_scope(engine) as session:
        return [
            AsRun(
                r.station,
                r.slot,
                r.item,
                r.started,
                r.finished,
                r.received,
                r.report_id,
                AsRunEvent(r.event) if r.event else None,
                r.day,
                r.programme,
                r.reason,
            )
            for r in session.scalars(query)
        ]


def create_notice(
    engine: Bind,
    *,
    areas: Iterable[str],
    text: str | None,
    clip_file: str,
    clip_sha256: str,
    duration: float,
    by: str,
    now: datetime,
    needs_approval: bool,
    by_account: int | None = None,
) -> Notice:
    """Record a notice; it is live at once unless a second operator must approve it."""
    state = NoticeState.PENDING if needs_approval else NoticeState.LIVE
    row = NoticeRow(
        areas=" ".join(areas),
        text=text,
        clip_file=clip_file,
        clip_sha256=clip_sha256,
        duration=duration,
        state=state.value,
        created_by=by,
        created_at=now,
        created_by_account=by_account,
    )
    with session_scope(engine) as session:
        session.add(row)
        session.flush()
        return _notice(row)


def approve_notice(
    engine: Bind, notice_id: int, *, by: str, now: datetime, by_account: int | None = None
) -> Notice:
    """Make a pending notice live. Who may (a second account, in its areas) is decided
    by `broadcaster.operations.approve_notice`, which calls this in its transaction."""
    with session_scope(engine) as session:
        row = session.get(NoticeRow, notice_id)
        if row is None:
            raise ValueError(f"no notice #{notice_id}")
        if row.state != NoticeState.PENDING:
            raise ValueError(f"notice #{notice_id} is {row.state}, not pending approval")
        session.execute(
            update(NoticeRow)
            .where(NoticeRow.id == notice_id)
            .values(
                state=NoticeState.LIVE.value,
                approved_by=by,
                approved_at=now,
                approved_by_account=by_account,
            )
        )
        session.refresh(row)
        return _notice(row)


def retract_notice(engine: Bind, notice_id: int, *, by: str, now: datetime) -> Notice:
    """Take a notice off the air (or stop a pending one from airing), recording who and when.

    One person may retract: stopping must be faster than sending, so no second
    approval is asked, but the act is kept on the notice and logged.
    """
    if not by.strip():
        raise ValueError("--by must name the operator retracting the notice")
    with session_scope(engine) as session:
        row = session.get(NoticeRow, notice_id)
        if row is None:
            raise ValueError(f"no notice #{notice_id}")
        if row.state == NoticeState.RETRACTED:
            raise ValueError(
                f"notice #{notice_id} was already retracted by {row.retracted_by} "
                f"at {row.retracted_at}"
            )
        session.execute(
            update(NoticeRow)
            .where(NoticeRow.id == notice_id)
            .values(state=NoticeState.RETRACTED.value, retracted_by=by, retracted_at=now)
        )
        session.refresh(row)
        return _notice(row)


def load_notice(engine: Bind, notice_id: int) -> Notice:
    """One notice by id, or ValueError naming it."""
    with session_scope(engine) as session:
        row = session.get(NoticeRow, notice_id)
        if row is None:
            raise ValueError(f"no notice #{notice_id}")
        return _notice(row)


def list_notices(engine: Bind, *, limit: int = 100) -> list[Notice]:
    """The newest notices first."""
    with session_scope(engine) as session:
        rows = session.scalars(select(NoticeRow).order_by(NoticeRow.id.desc()).limit(limit))
        return [_notice(r) for r in rows]


def recent_notices(engine: Engine, since: datetime) -> list[Notice]:
    """Notices airing from `since` on, in any state: what stations may still hold."""
    airs_at = func.coalesce(NoticeRow.approved_at, NoticeRow.created_at)
    with session_scope(engine) as session:
        rows = session.scalars(select(NoticeRow).where(airs_at >= since).order_by(NoticeRow.id))
        return [_notice(r) for r in rows]


def live_notices(engine: Engine, since: datetime) -> list[Notice]:
    """Notices live and airing from `since` on (older ones no longer shape any slot)."""
    with session_scope(engine) as session:
        rows = session.scalars(
            select(NoticeRow)
            .where(NoticeRow.state == NoticeState.LIVE.value)
            .order_by(NoticeRow.id)
        )
        return [n for n in map(_notice, rows) if n.airs_at >= since]


def _notice(row: NoticeRow) -> Notice:
    return Notice(
        row.id,
        tuple(row.areas.split()),
        row.text,
        row.clip_file,
        row.clip_sha256,
        row.duration,
        NoticeState(row.state),
        row.created_by,
        row.created_at,
        row.approved_by,
        row.approved_at,
        row.retracted_by,
        row.retracted_at,
    )


def notices_marker(engine: Engine) -> tuple[int, int, int]:
    """A value that changes whenever a notice is created, goes live or is retracted,
    for pollers (retractions only grow, so a go-live and a retraction never cancel out)."""
    with session_scope(engine) as session:
        row = session.execute(
            select(
                func.coalesce(func.max(NoticeRow.id), 0),
                func.count().filter(NoticeRow.state == NoticeState.LIVE.value),
                func.count().filter(NoticeRow.state == NoticeState.RETRACTED.value),
            )
        ).one()
        return int(row[0]), int(row[1]), int(row[2])
