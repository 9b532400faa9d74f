"""The clip library every node sees: clips imported on any node, kept in the database.

`library.toml` and its folder stay each node's own base library (the sample
clips, a folder handed to a commune). A clip imported on a node with a
database is kept here instead, its bytes in `published_audio` by hash, so the
node that schedules, whichever it is after a failover, airs what was imported
on another. Each import is a version: `pending` until a second account
approves it (what airs reaches the public), then `live`, replacing the live
version of its (id, language), which becomes `superseded`; `withdrawn` takes a
live version off the air. At most one version of a clip is live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Engine, Float, Index, Integer, String, Text, func, select, text, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from broadcaster.store.db import Bind, session_scope
from broadcaster.store.models import Base
from broadcaster.store.types import UTCDateTime


class VersionState(StrEnum):
    PENDING = "pending"
    LIVE = "live"
    SUPERSEDED = "superseded"
    WITHDRAWN = "withdrawn"


class LibraryClipRow(Base):
    __tablename__ = "library_clips"
    __table_args__ = (
        Index("ix_library_clips_clip", "id", "language", "state"),
        Index(
            "uq_library_clips_live",
            "id",
            "language",
            unique=True,
            postgresql_where=text("state = 'live'"),
            sqlite_where=text("state = 'live'"),
        ),
    )

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(512))
    suffix: Mapped[str] = mapped_column(String(16))  # the imported file's, for decoders
    duration: Mapped[float] = mapped_column(Float)
    sha256: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[str | None] = mapped_column(String(10))
    valid_until: Mapped[str | None] = mapped_column(String(10))
    for_programme: Mapped[str | None] = mapped_column(String(128))
    airs_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    areas: Mapped[str] = mapped_column(Text)  # what the importer had to cover, comma-joined
    state: Mapped[str] = mapped_column(String(12))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_by: Mapped[int | None] = mapped_column(Integer)  # accounts.id
    imported_name: Mapped[str] = mapped_column(String(128))
    node: Mapped[str] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[int | None] = mapped_column(Integer)  # who approved or withdrew


@dataclass(frozen=True)
class SharedClip:
    """A catalogue entry as stored: the clip's fields and the suffix of its bytes."""

    id: str
    language: str
    kind: str
    title: str
    suffix: str
    duration: float
    sha256: str
    valid_from: date | None
    valid_until: date | None
    for_programme: str | None
    airs_at: datetime | None


@dataclass(frozen=True)
class Version:
    """One import of a clip and where it stands."""

    version: int
    clip: SharedClip
    areas: tuple[str, ...]
    state: VersionState
    imported_at: datetime
    imported_by: int | None
    imported_name: str
    node: str
    decided_at: datetime | None


class VersionRefused(ValueError):
    """A version that cannot take this step (not pending, not live, unknown)."""


def add_version(
    bind: Bind,
    clip: SharedClip,
    *,
    live: bool,
    areas: tuple[str, ...],
    account_id: int | None,
    account_name: str,
    node: str,
    now: datetime,
) -> int:
    """Record an import (its bytes stored first, `published.put_audio`), pending or, when
    no second account is needed, live at once; pass the operation's connection. A
    version still pending for the clip steps aside: the newest import is the one to
    approve."""
    with session_scope(bind) as session:
        stepping_down = (
            (VersionState.PENDING, VersionState.LIVE) if live else (VersionState.PENDING,)
        )
        _supersede(session, clip.id, clip.language, account_id, now, *stepping_down)
        row = LibraryClipRow(
            id=clip.id,
            language=clip.language,
            kind=clip.kind,
            title=clip.title,
            suffix=clip.suffix,
            duration=clip.duration,
            sha256=clip.sha256,
            valid_from=clip.valid_from.isoformat() if clip.valid_from else None,
            valid_until=clip.valid_until.isoformat() if clip.valid_until else None,
            for_programme=clip.for_programme,
            airs_at=clip.airs_at,
            areas=",".join(areas),
            state=VersionState.LIVE if live else VersionState.PENDING,
            imported_at=now,
            imported_by=account_id,
            imported_name=account_name,
            node=node,
            decided_at=now if live else None,
            decided_by=account_id if live else None,
        )
        session.add(row)
        session.flush()
        return row.version


def approve_version(bind: Bind, version: int, *, account_id: int, now: datetime) -> Version:
    """Make a pending version live in place of the clip's live one."""
    with session_scope(bind) as session:
        row = _row(session, version, VersionState.PENDING)
        _supersede(session, row.id, row.language, account_id, now, VersionState.LIVE)
        row.state, row.decided_at, row.decided_by = VersionState.LIVE, now, account_id
        session.flush()
        return _version(row)


def withdraw_version(bind: Bind, version: int, *, account_id: int, now: datetime) -> Version:
    """Take a live or pending version out: off the air (the folder's clip of that id, if
    any, airs again) or never to air."""
    with session_scope(bind) as session:
        row = _row(session, version, VersionState.LIVE, VersionState.PENDING)
        row.state, row.decided_at, row.decided_by = VersionState.WITHDRAWN, now, account_id
        session.flush()
        return _version(row)


def load_version(bind: Bind, version: int) -> Version | None:
    with session_scope(bind) as session:
        row = session.get(LibraryClipRow, version)
        return _version(row) if row is not None else None


def versions(engine: Engine, *states: VersionState) -> list[Version]:
    """Versions in these states (all when none is named), newest first."""
    query = select(LibraryClipRow).order_by(LibraryClipRow.version.desc())
    if states:
        query = query.where(LibraryClipRow.state.in_([s.value for s in states]))
    with session_scope(engine) as session:
        return [_version(row) for row in session.scalars(query)]


def current(bind: Bind, clip_id: str, language: str) -> list[Version]:
    """The live and pending versions of a clip."""
    query = select(LibraryClipRow).where(
        LibraryClipRow.id == clip_id,
        LibraryClipRow.language == language,
        LibraryClipRow.state.in_([VersionState.LIVE.value, VersionState.PENDING.value]),
    )
    with session_scope(bind) as session:
        return [_version(row) for row in session.scalars(query)]


def live_clips(engine: Engine) -> list[SharedClip]:
    with session_scope(engine) as session:
        rows = session.scalars(
            select(LibraryClipRow)
            .where(LibraryClipRow.state == VersionState.LIVE.value)
            .order_by(LibraryClipRow.id, LibraryClipRow.language)
        )
        return [_clip(row) for row in rows]


def library_marker(engine: Engine) -> tuple[int, int]:
    """Changes whenever a version goes live or leaves the air: (live count, their sum)."""
    with session_scope(engine) as session:
        count, total = session.execute(
            select(func.count(), func.coalesce(func.sum(LibraryClipRow.version), 0)).where(
                LibraryClipRow.state == VersionState.LIVE.value
            )
        ).one()
    return int(count), int(total)


def _supersede(
    session: Session,
    clip_id: str,
    language: str,
    account_id: int | None,
    now: datetime,
    *states: VersionState,
) -> None:
    session.execute(
        update(LibraryClipRow)
        .where(
            LibraryClipRow.id == clip_id,
            LibraryClipRow.language == language,
            LibraryClipRow.state.in_([s.value for s in states]),
        )
        .values(state=VersionState.SUPERSEDED.value, decided_at=now, decided_by=account_id)
    )


def _row(session: Session, version: int, *allowed: VersionState) -> LibraryClipRow:
    row = session.get(LibraryClipRow, version, with_for_update=True)
    if row is None:
        raise VersionRefused(f"no clip version #{version}")
    if row.state not in allowed:
        raise VersionRefused(
            f"clip version #{version} ({row.id} [{row.language}]) is {row.state}, "
            f"not {' or '.join(allowed)}"
        )
    return row


def _version(row: LibraryClipRow) -> Version:
    return Version(
        row.version,
        _clip(row),
        tuple(a for a in row.areas.split(",") if a),
        VersionState(row.state),
        row.imported_at,
        row.imported_by,
        row.imported_name,
        row.node,
        row.decided_at,
    )


def _clip(row: LibraryClipRow) -> SharedClip:
    return SharedClip(
        row.id,
        row.language,
        row.kind,
        row.title,
        row.suffix,
        row.duration,
        row.sha256,
        date.fromisoformat(row.valid_from) if row.valid_from else None,
        date.fromisoformat(row.valid_until) if row.valid_until else None,
        row.for_programme,
        row.airs_at,
    )
