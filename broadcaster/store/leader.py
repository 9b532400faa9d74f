"""Who holds the scheduler when several daemons share one database.

Every daemon sends SMS and serves stations; only one plans and fires. On
PostgreSQL that one holds a session-level advisory lock (keyed by the schema,
since advisory locks span the database) on a connection it keeps open, so
the lock dies with the process (kill -9 included) and a standby takes over.
On SQLite, where daemons share a file on one machine, an exclusive `flock`
on a file beside the database does the same.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from broadcaster.store.db import dedicated_connection

if TYPE_CHECKING:
    import psycopg

LOCK_KEY = 0x62636173  # "bcas"; with the schema's hash: one scheduler per database schema
# The lock connection's TCP watch: probe after 5 s idle, every 2 s, 3 times; give up on
# data unacknowledged for 10 s. The leader writes on it every heartbeat (2 s).
SILENCE_IDLE, SILENCE_INTERVAL, SILENCE_COUNT = 5, 2, 3
USER_TIMEOUT_MS = 10_000
_SERVER_SIDE = {
    "tcp_keepalives_idle": SILENCE_IDLE,
    "tcp_keepalives_interval": SILENCE_INTERVAL,
    "tcp_keepalives_count": SILENCE_COUNT,
    "tcp_user_timeout": USER_TIMEOUT_MS,
}


class SchedulerLock:
    """A non-blocking, process-lifetime lock for the scheduler role."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: psycopg.Connection[tuple[Any, ...]] | None = None
        self._waiting: psycopg.Connection[tuple[Any, ...]] | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None or self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this process now holds it."""
        if self.held:
            return True
        if self._engine.dialect.name == "postgresql":
            return self._acquire_advisory()
        return self._acquire_flock()

    def still_held(self) -> bool:
        """Whether the lock's session still answers: a PostgreSQL restart, or an admin's
        pg_terminate_backend, ends the session and with it the lock, while this process
        runs on and a standby may already lead. A file lock lives as long as its descriptor."""
        if self._connection is None:
            return self._fd is not None
        try:
            self._connection.execute("SELECT 1")
        except self._errors():
            return False
        return True

    def holder(self) -> int | None:
        """The backend pid whose session holds the lock (PostgreSQL); None when the lock
        is free, or on SQLite, whose lock is a file on one machine."""
        if self._engine.dialect.name != "postgresql":
            return None
        with self._engine.connect() as connection:
            return connection.execute(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = :k AND objid = hashtext(current_schema())::oid "
                    "AND objsubid = 2 AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())"
                ),
                {"k": LOCK_KEY},
            ).scalar()

    def fence(self, pid: int) -> bool:
        """End the session of the backend `pid` (a silent leader's), so its lock is freed."""
        with self._engine.connect() as connection:
            ended = connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            return bool(ended.scalar())

    def release(self) -> None:
        """Free the lock before returning: a standby may take it at once. The server
        drops a closed session's locks only once its backend has exited, later."""
        for connection in (self._connection, self._waiting):
            if connection is not None:
                # a session already gone holds none
                with suppress(*self._errors()):
                    connection.execute("SELECT pg_advisory_unlock_all()")
                with suppress(*self._errors()):
                    connection.close()
        self._connection = self._waiting = None
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def _acquire_advisory(self) -> bool:
        connection = self._waiting
        if connection is None or connection.closed:
            connection = dedicated_connection(
                self._engine,
                idle=SILENCE_IDLE,
                interval=SILENCE_INTERVAL,
                count=SILENCE_COUNT,
                user_timeout_ms=USER_TIMEOUT_MS,
            )
        self._waiting = None
        # Advisory locks are database-wide: keyed by the schema too, so deployments (or
        # tests) sharing a database in schemas of their own each get their own scheduler.
        try:
            got = connection.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(current_schema()))", (LOCK_KEY,)
            ).fetchone()
        except self._errors():  # the kept session died (a server restart): a new one next time
            with suppress(*self._errors()):
                connection.close()
            return False
        if got and got[0]:
            for setting, value in _SERVER_SIDE.items():  # the server's end of the same watch
                connection.execute(f"SET {setting} = {value}")
            self._connection = connection
            return True
        self._waiting = connection  # a standby asks again each second: on the same session
        return False

    @staticmethod
    def _errors() -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error, OSError)

    def _acquire_flock(self) -> bool:
        database = make_url(str(self._engine.url)).database
        if not database or database == ":memory:":
            return True  # a private in-memory database has no one to share with
        fd = os.open(Path(database).with_suffix(".scheduler.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True
