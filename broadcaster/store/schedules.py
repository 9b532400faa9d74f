"""The schedule sets approvers accepted: the files' text, its hash, who and when.

The daemon runs the newest accepted set's SMS and emergency programmes (see
`broadcaster.schedule_review`); keeping the text, not a path, means an edit
on disk never changes what was accepted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Integer, String, Text, select, text
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.store.db import Bind, session_scope, transaction
from broadcaster.store.models import Base
from broadcaster.store.types import UTCDateTime


class ScheduleSetRow(Base):
    """One accepted schedule set; rows are only added."""

    __tablename__ = "schedule_sets"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64))
    files: Mapped[str] = mapped_column(Text)
    approved_by: Mapped[int | None] = mapped_column(Integer)
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True)
class ScheduleSet:
    """An accepted set: file name → text, and the account that accepted it."""

    id: int
    sha256: str
    files: dict[str, str]
    approved_by: int | None
    approved_at: datetime


def read_files(directory: Path) -> dict[str, str]:
    """The schedule files as they are on disk now, by file name."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.toml"))}


def digest(files: Mapping[str, str]) -> str:
    """One hash of a set of files, names included."""
    body = json.dumps(sorted(files.items()), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def latest(bind: Bind) -> ScheduleSet | None:
    """The newest accepted set, or None when no one has accepted any yet."""
    with session_scope(bind) as session:
        row = session.scalar(select(ScheduleSetRow).order_by(ScheduleSetRow.id.desc()).limit(1))
        if row is None:
            return None
        return ScheduleSet(
            row.id, row.sha256, json.loads(row.files), row.approved_by, row.approved_at
        )


def record(
    bind: Bind, files: Mapping[str, str], *, account_id: int, now: datetime, note: str
) -> ScheduleSet:
    """Store an accepted set."""
    with session_scope(bind) as session:
        row = ScheduleSetRow(
            sha256=digest(files),
            files=json.dumps(dict(files), ensure_ascii=False),
            approved_by=account_id,
            approved_at=now,
            note=note,
        )
        session.add(row)
        session.flush()
        return ScheduleSet(row.id, row.sha256, dict(files), account_id, now)


def recipients_by_commune(bind: Bind) -> dict[str, dict[str, int]]:
    """Subscribers per commune and carrier, for SMS counts and costs."""
    with transaction(bind) as conn:
        rows = conn.execute(
            text(
                "SELECT commune, carrier, count(*) AS n FROM subscribers GROUP BY commune, carrier"
            )
        )
        out: dict[str, dict[str, int]] = {}
        for row in rows:
            out.setdefault(row.commune, {})[row.carrier] = int(row.n)
        return out
