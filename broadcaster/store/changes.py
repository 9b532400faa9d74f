"""Hear at once what another process changed: PostgreSQL LISTEN/NOTIFY.

Triggers on the changed tables (`install_sql`) call `pg_notify` with a topic,
so every writer (the CLI, `/api/v1`, the console, psql) announces its change,
and only when it commits: a rolled-back change is never heard. The channel is
named for the tables' schema, so two deployments (or two tests) sharing a
database do not wake each other.

One `ChangeListener` per process holds its own connection (not a pool's),
LISTENs, and calls the wakes subscribed to a topic. Notifications are a
shortcut, not the record: whoever is woken still reads the database (its
markers) to learn what changed, and keeps polling as the backstop for what a
dropped connection missed. On (re)connect the listener wakes every subscriber
once, so a change made while it was away is picked up then, not one poll later.
SQLite has no NOTIFY: there the listener does nothing and polling is all.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Engine

from broadcaster.store.db import dedicated_connection

if TYPE_CHECKING:
    import psycopg

log = structlog.get_logger(__name__)

CHANNEL_PREFIX = "broadcaster."
RECONNECT_FIRST, RECONNECT_MAX = 0.5, 10.0
LISTEN_TICK = 0.5  # how often a quiet listener looks whether it was told to stop
Wake = Callable[[], None]


class Topic(StrEnum):
    """What changed; the payload of a notification."""

    LEVELS = "levels"  # a level change set
    NOTICES = "notices"  # a notice drafted, approved (live) or retracted
    SCHEDULES = "schedules"  # schedules approved, or a reload asked for
    LIBRARY = "library"  # a clip imported or replaced on any node


# (table, trigger event, topic): each fires once per statement, at commit.
TRIGGERS: tuple[tuple[str, str, Topic], ...] = (
    ("level_changes", "INSERT", Topic.LEVELS),
    ("audio_notices", "INSERT OR UPDATE", Topic.NOTICES),
    ("schedule_sets", "INSERT", Topic.SCHEDULES),
    ("daemon_status", "UPDATE OF reloads", Topic.SCHEDULES),
    ("library_clips", "INSERT OR UPDATE", Topic.LIBRARY),
)
_FUNCTION = "broadcaster_notify_change"


def install_sql(tables: Iterable[str] | None = None) -> list[str]:
    """Statements creating the notifying triggers of `tables` (all when None; PostgreSQL
    only): a migration names the tables that exist at its revision."""
    function = (
        f"CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM pg_notify('{CHANNEL_PREFIX}' || TG_TABLE_SCHEMA, TG_ARGV[0]); "
        "RETURN NULL; END $$"
    )
    return [function] + [
        f"CREATE TRIGGER {table}_notify AFTER {event} ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}('{topic.value}')"
        for table, event, topic in TRIGGERS
        if tables is None or table in tables
    ]


def drop_sql() -> list[str]:
    """Statements dropping the triggers (dropping the function drops them all)."""
    return [f"DROP FUNCTION IF EXISTS {_FUNCTION}() CASCADE"]


class ChangeListener:
    """LISTEN on a connection of its own, in a thread, and wake the subscribers."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._wakes: dict[Topic, list[Wake]] = defaultdict(list)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="changes", daemon=True)

    @property
    def enabled(self) -> bool:
        """Tell whether this database can notify (PostgreSQL) or is polled only (SQLite)."""
        return self._engine.dialect.name == "postgresql"

    def subscribe(self, topics: Iterable[Topic], wake: Wake) -> None:
        """Call `wake` (which must return at once) whenever one of `topics` changes."""
        for topic in topics:
            self._wakes[topic].append(wake)

    def start(self) -> None:
        if self.enabled:
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = RECONNECT_FIRST
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    channel = _channel(conn)
                    conn.execute(f'LISTEN "{channel}"')
                    log.info("changes.listening", channel=channel)
                    delay = RECONNECT_FIRST
                    self._wake(set(Topic))  # whatever changed while nobody listened
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=LISTEN_TICK):
                            self._deliver(note.payload)
            except Exception as exc:  # noqa: BLE001 - polling covers the gap; keep trying
                log.warning(
                    "changes.listener_lost", error=f"{type(exc).__name__}: {exc}", retry_in=delay
                )
                self._stop.wait(delay)
                delay = min(RECONNECT_MAX, delay * 2)

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        """Open a connection outside the engine's pool, with keepalives, so a peer that
        vanished without a word is noticed in about 25 s (polling covers the meantime)."""
        return dedicated_connection(self._engine, idle=10, interval=5, count=3)

    def _deliver(self, payload: str) -> None:
        try:
            topic = Topic(payload)
        except ValueError:
            log.warning("changes.unknown_topic", payload=payload)
            return
        self._wake({topic})

    def _wake(self, topics: set[Topic]) -> None:
        for wake in {w for topic in topics for w in self._wakes[topic]}:
            wake()


def _channel(conn: psycopg.Connection[tuple[Any, ...]]) -> str:
    """The channel of the schema our tables are in (the one the triggers notify on)."""
    row = conn.execute("SELECT current_schema()").fetchone()
    return CHANNEL_PREFIX + str(row[0] if row else "public")
