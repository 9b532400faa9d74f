"""The read path: the queries reading commands make, on a plain DBAPI connection.

Importing SQLAlchemy and mapping the models costs several times what
`broadcaster level show` may take, so the reading commands (`level show`,
`level history`, `status`, `sms status`) open the database with the driver
itself (`sqlite3` read-only, or psycopg) and run the SQL below. The daemon
and the writing commands keep their SQLAlchemy engine and reach the same
queries through `Reader.of(engine)`, so every query is written once. SQL uses
`:name` parameters on both backends.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from broadcaster.levels import LevelChange
from broadcaster.nodes import Node, NodeRole

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*=\s*(.+)$", re.MULTILINE)
_PARAM = re.compile(r"(?<![:\w]):(\w+)")
SCHEDULER = "scheduler"  # the daemon_status row of the scheduling daemon
HEARTBEAT_SECONDS = 2.0  # how often the scheduling daemon writes its status row
STALE_AFTER = timedelta(seconds=5 * HEARTBEAT_SECONDS)  # a scheduler this quiet is dead


class Reader:
    """One DBAPI connection (sqlite3 or psycopg) that answers `:name`-style queries."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.sqlite = type(connection).__module__.partition(".")[0] == "sqlite3"

    @classmethod
    def open(cls, url: str) -> Reader | None:
        """Connect for reading without SQLAlchemy; None for a URL this cannot read
        (an in-memory or missing SQLite database, another driver): the caller then
        goes the engine's way, which also explains a missing database."""
        backend, _, rest = url.partition("://")
        if backend in ("sqlite", "sqlite+pysqlite"):
            path = _sqlite_path(rest)
            if path is None or not path.is_file():
                return None
            import sqlite3

            # Read-only: a reading command never creates the file, its folder or a journal.
            uri = f"{path.absolute().as_uri()}?mode=ro"
            return cls(sqlite3.connect(uri, uri=True, timeout=30))
        if backend in ("postgresql", "postgresql+psycopg"):
            import psycopg

            connection = psycopg.connect(f"postgresql://{rest}", connect_timeout=5)
            connection.read_only = True
            return cls(connection)
        return None

    @classmethod
    @contextmanager
    def of(cls, engine: Engine | Connection) -> Iterator[Reader]:
        """Borrow a pooled connection of `engine` for the queries here; given a
        connection, read on it, inside its transaction (and leave it open)."""
        from sqlalchemy import Connection

        if isinstance(engine, Connection):
            yield cls(engine.connection.driver_connection)
            return
        pooled = engine.raw_connection()
        try:
            yield cls(pooled.driver_connection)
        finally:
            pooled.close()

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        if not self.sqlite:
            sql = _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def close(self) -> None:
        self.connection.close()


def _sqlite_path(rest: str) -> Path | None:
    """The file of `sqlite:///relative` or `sqlite:////absolute`; None for memory or URIs."""
    database = unquote(rest.removeprefix("/").partition("?")[0])
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def utc(value: Any) -> datetime | None:
    """A stored naive-UTC time (text on SQLite, a datetime on PostgreSQL), made aware."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC)


# --- schema -----------------------------------------------------------------------


def expected_heads() -> set[str]:
    """The revisions no migration builds on, read from the files' `revision` and
    `down_revision` lines (Alembic's own answer is pinned equal by a test)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        values = {
            key: ast.literal_eval(value.split("#")[0].strip())
            for key, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8"))
        }
        if "revision" not in values:
            continue
        revisions.add(values["revision"])
        down = values.get("down_revision")
        parents.update([down] if isinstance(down, str) else (down or ()))
    return revisions - parents


def current_heads(reader: Reader) -> set[str]:
    """The revisions recorded in the database; empty before the first upgrade."""
    exists = (
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        if reader.sqlite
        else "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 'alembic_version' "
        "AND schemaname = current_schema()"
    )
    if not reader.rows(exists)[0][0]:
        return set()
    return {version for (version,) in reader.rows("SELECT version_num FROM alembic_version")}


# --- queries ----------------------------------------------------------------------


def level_changes(reader: Reader, areas: Iterable[str] | None = None) -> list[LevelChange]:
    """Every recorded level change, oldest first, optionally only for some areas."""
    sql = "SELECT area, level, at, by, reason, previous FROM level_changes"
    params: dict[str, str] = {}
    if areas is not None:
        params = {f"a{i}": code for i, code in enumerate(areas)}
        if not params:
            return []
        sql += f" WHERE area IN ({', '.join(':' + name for name in params)})"
    rows = reader.rows(sql + " ORDER BY at, id", **params)
    return [
        LevelChange(area, level, utc(at), by, reason, previous)  # type: ignore[arg-type]
        for area, level, at, by, reason, previous in rows
    ]


@dataclass(frozen=True)
class DaemonStatus:
    """What the scheduling daemon last reported (the `daemon_status` row)."""

    node: str | None
    pid: int | None
    started_at: datetime | None
    heartbeat_at: datetime | None
    stopped_at: datetime | None
    report: str
    reloads: int


def daemon_status(reader: Reader) -> DaemonStatus | None:
    rows = reader.rows(
        "SELECT node, pid, started_at, heartbeat_at, stopped_at, report, reloads "
        "FROM daemon_status WHERE name = :name",
        name=SCHEDULER,
    )
    if not rows:
        return None
    node, pid, started, beat, stopped, report, reloads = rows[0]
    return DaemonStatus(
        node, pid, utc(started), utc(beat), utc(stopped), report or "{}", reloads or 0
    )


def dispatch_counts(reader: Reader) -> dict[str, int]:
    """Occurrences by state, from the counts the database keeps (store/counters.py)."""
    rows = reader.rows(
        "SELECT state, sum(n) FROM dispatch_counters GROUP BY state HAVING sum(n) != 0"
    )
    return {state: int(count) for state, count in rows}


NODE_COLUMNS = "name, host, pid, http_bind, role, started_at, heartbeat_at, stopped_at, binds"


def node_of(row: tuple[Any, ...]) -> Node:
    """A `nodes` row (NODE_COLUMNS, in order) as a Node."""
    name, host, pid, http_bind, role, started, beat, stopped, binds = row
    return Node(
        name,
        host,
        pid,
        http_bind,
        NodeRole(role),
        utc(started),  # type: ignore[arg-type]
        utc(beat),  # type: ignore[arg-type]
        utc(stopped),
        json.loads(binds or "{}"),
    )


def nodes(reader: Reader) -> list[Node]:
    """Every node that ever beat on this database, by name (store/nodes.py writes them)."""
    return [node_of(row) for row in reader.rows(f"SELECT {NODE_COLUMNS} FROM nodes ORDER BY name")]


class NotFound(ValueError):
    """A row asked for by its id that does not exist."""


def blast_status(reader: Reader, blast_id: int) -> dict[str, object]:
    """Count a blast's messages by state, overall and per carrier; the states add up to
    the total. `partly_sent` counts cancelled messages some of whose parts had gone out
    (the cancel stops a long message between parts)."""
    from broadcaster.sms.states import MessageState

    blast = reader.rows(
        "SELECT state, exercise, priority, corrects FROM sms_blasts WHERE id = :b", b=blast_id
    )
    if not blast:
        raise NotFound(f"no blast {blast_id}")
    state, exercise, priority, corrects = blast[0]
    rows = reader.rows(
        "SELECT carrier, state, count(*) FROM sms_messages WHERE blast_id = :b "
        "GROUP BY carrier, state",
        b=blast_id,
    )
    ((partly_sent,),) = reader.rows(
        "SELECT count(DISTINCT m.id) FROM sms_messages m "
        "JOIN sms_parts p ON p.message_id = m.id "
        "WHERE m.blast_id = :b AND m.state = 'cancelled'",
        b=blast_id,
    )

    def zero() -> dict[str, int]:
        return {"total": 0, **{str(s): 0 for s in MessageState}}

    overall = zero()
    per_carrier: dict[str, dict[str, int]] = {}
    for carrier, message_state, n in rows:
        for counts in (overall, per_carrier.setdefault(carrier, zero())):
            counts[message_state] += n
            counts["total"] += n
    return {
        "id": blast_id,
        "state": state,
        "exercise": bool(exercise),
        "priority": priority,
        "corrects": corrects,
        **overall,
        "partly_sent": partly_sent,
        "per_carrier": per_carrier,
    }
