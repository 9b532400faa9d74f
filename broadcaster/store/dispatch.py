"""The dispatch table (each occurrence claimed once) and the daemon's status row.

A claim is `INSERT … ON CONFLICT DO NOTHING` on the unique key (programme,
area, at): the database, not the daemon's memory, decides who fires an
occurrence, so a restart or a second daemon never fires it twice. Claims are
set-based (one statement per chunk of a bucket), which keeps a 06:00 bucket of
10,000 communes to a handful of statements.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Engine,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.occurrence import Occurrence
from broadcaster.store.db import session_scope
from broadcaster.store.models import Base
from broadcaster.store.read import HEARTBEAT_SECONDS as HEARTBEAT_SECONDS
from broadcaster.store.read import SCHEDULER, DaemonStatus, Reader, daemon_status, dispatch_counts
from broadcaster.store.read import STALE_AFTER as STALE_AFTER
from broadcaster.store.types import UTCDateTime

CHUNK = 1000


class DispatchState(StrEnum):
    CLAIMED = "claimed"  # taken by a daemon; its handler is running or it died meanwhile
    DONE = "done"
    FAILED = "failed"
    MISSED = "missed"  # too late after downtime for its channel's grace period
    UNHANDLED = "unhandled"  # no handler for the channel in this daemon


class DispatchRow(Base):
    __tablename__ = "dispatch"
    __table_args__ = (UniqueConstraint("programme", "area", "at", name="uq_dispatch_key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    programme: Mapped[str] = mapped_column(String(64))
    area: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    node: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    previous_node: Mapped[str | None] = mapped_column(String(128))  # died holding the claim


class DaemonStatusRow(Base):
    """What the running daemon last reported; `reloads` is bumped by `broadcaster reload`."""

    __tablename__ = "daemon_status"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str | None] = mapped_column(String(128))
    pid: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    report: Mapped[str] = mapped_column(Text, default="{}")
    reloads: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class Claimed:
    id: int
    occurrence: Occurrence


def claim(
    engine: Engine,
    occurrences: Sequence[Occurrence],
    *,
    now: datetime,
    node: str,
    state: DispatchState = DispatchState.CLAIMED,
) -> list[Claimed]:
    """Insert a row per occurrence unless its key exists; return those this call won."""
    by_key = {o.key: o for o in occurrences}
    won: list[Claimed] = []
    from sqlalchemy.dialects import postgresql, sqlite  # not on the reading commands' path

    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    items = list(by_key.values())
    with session_scope(engine) as session:
        for i in range(0, len(items), CHUNK):
            rows = [
                {
                    "programme": o.programme,
                    "area": o.area,
                    "at": o.at,
                    "channel": o.channel.value,
                    "state": state.value,
                    "claimed_at": now,
                    "node": node,
                }
                for o in items[i : i + CHUNK]
            ]
            stmt = (
                insert(DispatchRow)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["programme", "area", "at"])
                .returning(DispatchRow.id, DispatchRow.programme, DispatchRow.area, DispatchRow.at)
            )
            for row_id, programme, area, at in session.execute(stmt):
                won.append(Claimed(row_id, by_key[(programme, area, at)]))
    return won


@dataclass(frozen=True)
class Orphan:
    """A claim whose daemon died before finishing it (its handler may have run)."""

    id: int
    key: tuple[str, str, datetime]
    channel: str
    node: str


def orphans(engine: Engine, node: str) -> list[Orphan]:
    """Return the rows left `claimed` by other daemons.

    Only the scheduler claims, and the caller holds the scheduler lock, so the
    daemon that claimed these has gone (its lock died with its session).
    """
    query = select(
        DispatchRow.id,
        DispatchRow.programme,
        DispatchRow.area,
        DispatchRow.at,
        DispatchRow.channel,
        DispatchRow.node,
    ).where(DispatchRow.state == DispatchState.CLAIMED.value, DispatchRow.node != node)
    with session_scope(engine) as session:
        return [Orphan(i, (p, a, at), c, n) for i, p, a, at, c, n in session.execute(query)]


def adopt(engine: Engine, ids: Iterable[int], *, node: str, now: datetime) -> set[int]:
    """Make orphaned claims this daemon's: one more attempt, the dead claimant kept.

    Returns the ids adopted: a claimant that lost its lock but still ran may have
    finished a claim since it was listed, and that one must not fire again."""
    ids = list(ids)
    adopted: set[int] = set()
    with session_scope(engine) as session:
        for i in range(0, len(ids), CHUNK):
            adopted.update(
                session.scalars(
                    update(DispatchRow)
                    .where(
                        DispatchRow.id.in_(ids[i : i + CHUNK]),
                        DispatchRow.state == DispatchState.CLAIMED.value,
                    )
                    .values(
                        previous_node=DispatchRow.node,
                        node=node,
                        claimed_at=now,
                        attempts=DispatchRow.attempts + 1,
                    )
                    .returning(DispatchRow.id)
                )
            )
    return adopted


def finish(
    engine: Engine,
    ids: Iterable[int],
    state: DispatchState,
    now: datetime,
    detail: str | None = None,
) -> None:
    """Record how claimed occurrences ended."""
    ids = list(ids)
    with session_scope(engine) as session:
        for i in range(0, len(ids), CHUNK):
            session.execute(
                update(DispatchRow)
                .where(DispatchRow.id.in_(ids[i : i + CHUNK]))
                .values(state=state.value, finished_at=now, detail=detail)
            )


def release(engine: Engine, ids: Iterable[int]) -> None:
    """Hand back claims whose work never started, so a later start may fire them."""
    ids = list(ids)
    with session_scope(engine) as session:
        for i in range(0, len(ids), CHUNK):
            session.execute(
                delete(DispatchRow).where(
                    DispatchRow.id.in_(ids[i : i + CHUNK]),
                    DispatchRow.state == DispatchState.CLAIMED.value,
                )
            )


def counts(engine: Engine) -> dict[str, int]:
    """Occurrences by state, from the counts the database keeps (store/counters.py)."""
    with Reader.of(engine) as reader:
        return dispatch_counts(reader)


def rows_for(engine: Engine, programme: str | None = None) -> list[DispatchRow]:
    """Every dispatch row (optionally of one programme), oldest first."""
    query = select(DispatchRow).order_by(DispatchRow.at, DispatchRow.area)
    if programme is not None:
        query = query.where(DispatchRow.programme == programme)
    with session_scope(engine) as session:
        return list(session.scalars(query))


def keys_in(
    engine: Engine, start: datetime, end: datetime, states: Iterable[DispatchState]
) -> set[tuple[str, str, datetime]]:
    """The (programme, area, at) keys of dispatch rows in [start, end) in `states`."""
    query = select(DispatchRow.programme, DispatchRow.area, DispatchRow.at).where(
        DispatchRow.at >= start,
        DispatchRow.at < end,
        DispatchRow.state.in_([s.value for s in states]),
    )
    with session_scope(engine) as session:
        return {(p, a, at) for p, a, at in session.execute(query)}


def write_status(
    engine: Engine,
    *,
    now: datetime,
    report: dict[str, Any] | None = None,
    started: bool = False,
    stopped: bool = False,
    node: str = "",
    pid: int | None = None,
) -> None:
    """Upsert the scheduler's status row: heartbeat, and the report when given."""
    with session_scope(engine) as session:
        row = session.get(DaemonStatusRow, SCHEDULER)
        if row is None:
            row = DaemonStatusRow(name=SCHEDULER, reloads=0, report="{}")
            session.add(row)
        row.heartbeat_at = now
        if started:
            row.started_at, row.stopped_at, row.node, row.pid = now, None, node, pid
        if stopped:
            row.stopped_at = now
        if report is not None:
            row.report = json.dumps(report, ensure_ascii=False, default=str)


def read_status(engine: Engine) -> DaemonStatus | None:
    with Reader.of(engine) as reader:
        return daemon_status(reader)


def reload_marker(engine: Engine) -> int:
    with session_scope(engine) as session:
        return (
            session.scalar(select(DaemonStatusRow.reloads).where(DaemonStatusRow.name == SCHEDULER))
            or 0
        )


def request_reload(engine: Engine) -> bool:
    """Ask the running daemon to re-read the schedules; False if none ever ran."""
    with session_scope(engine) as session:
        result = session.execute(
            update(DaemonStatusRow)
            .where(DaemonStatusRow.name == SCHEDULER)
            .values(reloads=DaemonStatusRow.reloads + 1)
        )
        return bool(cast(CursorResult[Any], result).rowcount)
