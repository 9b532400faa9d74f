"""The clip library every node sees: clips imported on any node, kept in the database.

`library.toml` and its folder stay each node's own library (the sample clips,
a folder handed to a commune). A clip imported on a node with a database is
also written here, its bytes into `published_audio` by hash, so the node that
schedules, whichever it is after a failover, airs what was imported on
another. A row per (id, language): a replacement imported anywhere replaces
it for every node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, Float, Integer, String, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.store.db import Bind, session_scope
from broadcaster.store.models import Base
from broadcaster.store.types import UTCDateTime


class LibraryClipRow(Base):
    __tablename__ = "library_clips"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    language: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(512))
    suffix: Mapped[str] = mapped_column(String(16))  # the imported file's, for decoders
    duration: Mapped[float] = mapped_column(Float)
    sha256: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[str | None] = mapped_column(String(10))
    valid_until: Mapped[str | None] = mapped_column(String(10))
    for_programme: Mapped[str | None] = mapped_column(String(128))
    airs_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_by: Mapped[int | None] = mapped_column(Integer)  # accounts.id
    node: Mapped[str] = mapped_column(String(128))
    revision: Mapped[int] = mapped_column(Integer)  # bumped on every import or replacement


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


def share_clip(
    bind: Bind, clip: SharedClip, *, account_id: int | None, node: str, now: datetime
) -> None:
    """Insert or replace the row of (id, language); pass the operation's connection so the
    row commits with its audit record. Store the bytes (`published.put_audio`) first."""
    fields: Mapping[str, Any] = {
        "kind": clip.kind,
        "title": clip.title,
        "suffix": clip.suffix,
        "duration": clip.duration,
        "sha256": clip.sha256,
        "valid_from": clip.valid_from.isoformat() if clip.valid_from else None,
        "valid_until": clip.valid_until.isoformat() if clip.valid_until else None,
        "for_programme": clip.for_programme,
        "airs_at": clip.airs_at,
        "imported_at": now,
        "imported_by": account_id,
        "node": node,
    }
    with session_scope(bind) as session:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(LibraryClipRow).values(
            id=clip.id, language=clip.language, revision=1, **fields
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["id", "language"],
                set_={**fields, "revision": LibraryClipRow.revision + 1},
            )
        )


def shared_clips(engine: Engine) -> list[SharedClip]:
    with session_scope(engine) as session:
        rows = session.scalars(
            select(LibraryClipRow).order_by(LibraryClipRow.id, LibraryClipRow.language)
        ).all()
        return [_clip(row) for row in rows]


def library_marker(engine: Engine) -> tuple[int, int]:
    """Changes whenever a clip is shared or replaced: (rows, sum of revisions)."""
    with session_scope(engine) as session:
        count, total = session.execute(
            select(func.count(), func.coalesce(func.sum(LibraryClipRow.revision), 0))
        ).one()
    return int(count), int(total)


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
