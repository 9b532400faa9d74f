"""Tables of what stations are served: day documents, audio bytes, renders, plan, secret.

Every node serves stations from these, so any node (or a balancer in front
of several) answers with the same bytes: the publishing node writes each
station's day document here, and the audio it references by hash before the
day; a node serving a hash it lacks locally copies it from here into its
cache once (the bytes never change). A revision counter, bumped in every
transaction that changes a day, lets a node watch for changes with one cheap
query however many stations wait; the bump locks its row, so revisions
commit in order and a watcher never skips one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import (
    BigInteger,
    Engine,
    Float,
    Index,
    LargeBinary,
    String,
    Text,
    delete,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.store.db import session_scope
from broadcaster.store.models import Base

CHUNK = 1000  # rows per statement: bounded memory, few round trips
AUDIO_PART = 1 << 20  # bytes of audio per row


class PublishedDayRow(Base):
    """One station's published day: the exact bytes served, and their hash."""

    __tablename__ = "published_days"
    # Covers `day_hashes`: comparing 10,000 hashes must not read past 10,000 bodies.
    __table_args__ = (Index("ix_published_days_day_hash", "day", "station", "sha256"),)

    station: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class PublishedAudioRow(Base):
    """A part of an audio file stations fetch, the file named by the SHA-256 of its bytes.

    Parts of AUDIO_PART bytes, so a 2 h van loop (58 MB) is never one value in memory.
    """

    __tablename__ = "published_audio"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    part: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class RenderRow(Base):
    """What a render request (a clip at a loudness, a mix) produced, as the audio store's
    index, so a node never re-renders (ffmpeg builds differ in bytes) what another did."""

    __tablename__ = "published_renders"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    duration: Mapped[float] = mapped_column(Float)
    lufs: Mapped[float | None] = mapped_column(Float)
    true_peak: Mapped[float | None] = mapped_column(Float)


class PublishedStateRow(Base):
    """One row: the revision of the published days, the plan and the station token secret."""

    __tablename__ = "published_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger)
    plan: Mapped[str | None] = mapped_column(Text)
    token_secret: Mapped[str | None] = mapped_column(String(128))


def _insert(engine: Engine):  # type: ignore[no-untyped-def]
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def day_hashes(engine: Engine, days: Iterable[date]) -> dict[tuple[str, str], str]:
    """The hash of every published day document of `days`, by (station, day)."""
    wanted = [d.isoformat() for d in days]
    with session_scope(engine) as session:
        rows = session.execute(
            select(PublishedDayRow.station, PublishedDayRow.day, PublishedDayRow.sha256).where(
                PublishedDayRow.day.in_(wanted)
            )
        )
        return {(station, day): digest for station, day, digest in rows}


def write_days(
    engine: Engine,
    changed: Mapping[tuple[str, str], tuple[bytes, str]],
    removed: Iterable[tuple[str, str]] = (),
) -> None:
    """Store changed day documents ((station, day) → (body, sha256)) and drop removed ones,
    in one transaction under a new revision."""
    gone = list(removed)
    if not changed and not gone:
        return
    insert = _insert(engine)
    with session_scope(engine) as session:
        revision = session.execute(
            update(PublishedStateRow)
            .where(PublishedStateRow.id == 1)
            .values(revision=PublishedStateRow.revision + 1)
            .returning(PublishedStateRow.revision)
        ).scalar_one()
        rows = [
            {"station": s, "day": d, "body": body, "sha256": digest, "revision": revision}
            for (s, d), (body, digest) in changed.items()
        ]
        for start in range(0, len(rows), CHUNK):
            stmt = insert(PublishedDayRow)
            stmt = stmt.on_conflict_do_update(
                index_elements=["station", "day"],
                set_={
                    "body": stmt.excluded.body,
                    "sha256": stmt.excluded.sha256,
                    "revision": stmt.excluded.revision,
                },
            )
            session.execute(stmt, rows[start : start + CHUNK])
        for start in range(0, len(gone), CHUNK):
            session.execute(
                delete(PublishedDayRow).where(
                    tuple_(PublishedDayRow.station, PublishedDayRow.day).in_(
                        gone[start : start + CHUNK]
                    )
                )
            )


def drop_days_before(engine: Engine, day: date) -> int:
    """Forget published days before `day`; return how many documents went."""
    with session_scope(engine) as session:
        result = session.execute(
            delete(PublishedDayRow).where(PublishedDayRow.day < day.isoformat())
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def read_day(engine: Engine, station: str, day: date) -> bytes | None:
    with session_scope(engine) as session:
        return session.scalar(
            select(PublishedDayRow.body).where(
                PublishedDayRow.station == station, PublishedDayRow.day == day.isoformat()
            )
        )


def stations_published(engine: Engine, day: date) -> set[str]:
    """The stations that hold a published document for `day`."""
    with session_scope(engine) as session:
        return set(
            session.scalars(
                select(PublishedDayRow.station).where(PublishedDayRow.day == day.isoformat())
            )
        )


def revision(engine: Engine) -> int:
    """The revision of the published days: it moves whenever any day changes; 0 before
    the first publication."""
    with session_scope(engine) as session:
        found = session.scalar(select(PublishedStateRow.revision).where(PublishedStateRow.id == 1))
        return int(found or 0)


def ever_published(engine: Engine) -> bool:
    """Whether a publication ever ran here (one of a plan that airs nothing writes no day)."""
    with session_scope(engine) as session:
        found = session.scalar(
            select(PublishedStateRow.plan.is_not(None) | (PublishedStateRow.revision > 0)).where(
                PublishedStateRow.id == 1
            )
        )
        return bool(found)


def missing_audio(engine: Engine, hashes: Iterable[str]) -> set[str]:
    wanted = set(hashes)
    if not wanted:
        return set()
    with session_scope(engine) as session:
        have = set(
            session.scalars(
                select(PublishedAudioRow.sha256).where(
                    PublishedAudioRow.sha256.in_(wanted), PublishedAudioRow.part == 0
                )
            )
        )
    return wanted - have


def put_audio(engine: Engine, sha256: str, source: BinaryIO) -> None:
    """Store an audio file once, part by part in one transaction (a reader sees all parts
    or none); a second node storing the same hash changes nothing."""
    insert = _insert(engine)
    with session_scope(engine) as session:
        for part, data in enumerate(iter(lambda: source.read(AUDIO_PART), b"")):
            stmt = insert(PublishedAudioRow).values(sha256=sha256, part=part, data=data)
            session.execute(stmt.on_conflict_do_nothing(index_elements=["sha256", "part"]))


def read_audio(engine: Engine, sha256: str) -> Iterator[bytes]:
    """Yield an audio file's parts in order, one query each; nothing when it is not stored."""
    part = 0
    while True:
        with session_scope(engine) as session:
            data = session.scalar(
                select(PublishedAudioRow.data).where(
                    PublishedAudioRow.sha256 == sha256, PublishedAudioRow.part == part
                )
            )
        if data is None:
            return
        yield data
        part += 1


def copy_audio(engine: Engine, sha256: str, tmp: Path, target: Path) -> bool:
    """Write the stored file of `sha256` through `tmp` (a name of the caller's own) to
    `target`; False, and nothing written, when it is not stored or not these bytes."""
    digest, size = hashlib.sha256(), 0
    with tmp.open("wb") as out:
        for data in read_audio(engine, sha256):
            digest.update(data)
            size += out.write(data)
    if not size or digest.hexdigest() != sha256:
        tmp.unlink()
        return False
    os.replace(tmp, target)
    return True


def remember_render(engine: Engine, key: str, fields: Mapping[str, Any]) -> None:
    """Keep what `key` rendered to (sha256, duration, lufs, true_peak); the first wins."""
    stmt = _insert(engine)(RenderRow).values(key=key, **fields)
    with session_scope(engine) as session:
        session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))


def lookup_render(engine: Engine, key: str) -> dict[str, Any] | None:
    """What `key` rendered to, as `remember_render` was given it; None if never."""
    with session_scope(engine) as session:
        row = session.get(RenderRow, key)
        if row is None:
            return None
        return {
            "sha256": row.sha256,
            "duration": row.duration,
            "lufs": row.lufs,
            "true_peak": row.true_peak,
        }


def render_durations(engine: Engine, keys: Iterable[str]) -> dict[str, float]:
    """The aired duration of each of `keys` some node has rendered (missing: none has)."""
    wanted = sorted(set(keys))
    found: dict[str, float] = {}
    with session_scope(engine) as session:
        for i in range(0, len(wanted), 500):
            query = select(RenderRow.key, RenderRow.duration).where(
                RenderRow.key.in_(wanted[i : i + 500])
            )
            found.update((key, duration) for key, duration in session.execute(query))
    return found


def save_plan(engine: Engine, plan: str) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(PublishedStateRow).where(PublishedStateRow.id == 1).values(plan=plan)
        )


def load_plan(engine: Engine) -> str | None:
    with session_scope(engine) as session:
        return session.scalar(select(PublishedStateRow.plan).where(PublishedStateRow.id == 1))


def token_secret(engine: Engine, legacy: str | None) -> str:
    """The station token secret every node shares: the first node to ask stores one
    (`legacy`, a secret an older version generated into its data_dir, so stations keep
    their tokens; else a new one), and every node reads the same back."""
    candidate = legacy or secrets.token_hex(32)
    with session_scope(engine) as session:
        session.execute(
            update(PublishedStateRow)
            .where(PublishedStateRow.id == 1, PublishedStateRow.token_secret.is_(None))
            .values(token_secret=candidate)
        )
        found = session.scalar(
            select(PublishedStateRow.token_secret).where(PublishedStateRow.id == 1)
        )
    assert found is not None  # the migration creates the row
    return found


def stored_token_secret(engine: Engine) -> str | None:
    """The shared secret, if a node stored one; reads only."""
    with session_scope(engine) as session:
        return session.scalar(
            select(PublishedStateRow.token_secret).where(PublishedStateRow.id == 1)
        )
