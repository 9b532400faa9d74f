"""Console login sessions: the browser holds a random token, the database its hash.

A server-side row (rather than a signed cookie) lets logout, disabling an
account or an admin's "end all sessions" take effect on the next request, on
every node sharing the database. Each session carries its own CSRF token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, Index, Integer, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.store.db import session_scope
from broadcaster.store.models import Base
from broadcaster.store.types import UTCDateTime

MAX_TOKEN = 128  # a cookie longer than any token we issue is not looked up
SEEN_EVERY = timedelta(minutes=1)  # write `seen_at` at most this often per session


class SessionRow(Base):
    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_account", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(Integer)
    csrf: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class ConsoleSession:
    """A live session as a request sees it."""

    id: int
    account_id: int
    csrf: str
    created_at: datetime


@dataclass(frozen=True)
class Lifetime:
    """How long a session lives: at most `absolute` after login, `idle` after last use."""

    idle: timedelta = timedelta(hours=2)
    absolute: timedelta = timedelta(hours=12)


def open_session(
    bind: Engine, account_id: int, *, client: str, now: datetime
) -> tuple[str, ConsoleSession]:
    """Start a session; returns the token for the cookie (shown once, kept as a hash)."""
    token = secrets.token_urlsafe(32)
    row = SessionRow(
        token_sha256=_hash(token),
        account_id=account_id,
        csrf=secrets.token_urlsafe(32),
        client=client[:64],
        created_at=now,
        seen_at=now,
        ended_at=None,
    )
    with session_scope(bind) as session:
        session.add(row)
        session.flush()
        return token, ConsoleSession(row.id, account_id, row.csrf, now)


def find_session(
    bind: Engine, token: str, *, now: datetime, lifetime: Lifetime
) -> ConsoleSession | None:
    """The live session a cookie names, or None (unknown, ended, idle or too old)."""
    if not token or len(token) > MAX_TOKEN:
        return None
    with session_scope(bind) as session:
        row = session.scalar(select(SessionRow).where(SessionRow.token_sha256 == _hash(token)))
        if row is None or row.ended_at is not None:
            return None
        if now - row.seen_at > lifetime.idle or now - row.created_at > lifetime.absolute:
            row.ended_at = now
            return None
        if now - row.seen_at >= SEEN_EVERY:
            row.seen_at = now
        return ConsoleSession(row.id, row.account_id, row.csrf, row.created_at)


def end_session(bind: Engine, token: str, *, now: datetime) -> bool:
    """End the session a cookie names (logout); returns whether one was live."""
    if not token or len(token) > MAX_TOKEN:
        return False
    with session_scope(bind) as session:
        result = session.execute(
            update(SessionRow)
            .where(SessionRow.token_sha256 == _hash(token), SessionRow.ended_at.is_(None))
            .values(ended_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def end_sessions_of(bind: Engine, account_id: int, *, now: datetime) -> int:
    """End every live session of an account (disabled, password changed)."""
    with session_scope(bind) as session:
        result = session.execute(
            update(SessionRow)
            .where(SessionRow.account_id == account_id, SessionRow.ended_at.is_(None))
            .values(ended_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
