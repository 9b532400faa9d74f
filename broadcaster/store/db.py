"""Engines, sessions and schema upgrades for SQLite and PostgreSQL alike.

Alembic is imported only to migrate or to explain a mismatch: the schema check
every command makes reads the heads of the migration files and the database's
`alembic_version` directly, because importing Alembic costs more than most
commands take.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.store import read
from broadcaster.store.read import MIGRATIONS, Reader, expected_heads

if TYPE_CHECKING:
    import psycopg
    from alembic.config import Config


def dedicated_connection(
    engine: Engine, *, idle: int, interval: int, count: int, user_timeout_ms: int = 0
) -> psycopg.Connection[tuple[Any, ...]]:
    """A PostgreSQL connection of its own, outside the engine's pool (autocommit), whose
    TCP probes an idle peer after `idle` s, every `interval` s, `count` times, and with
    `user_timeout_ms` gives up on data unacknowledged that long: for a session that
    must learn within seconds, not TCP's minutes, that the other end is gone."""
    import psycopg

    args, params = engine.dialect.create_connect_args(engine.url)
    libpq: dict[str, Any] = {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": interval,
        "keepalives_count": count,
    }
    if user_timeout_ms:
        libpq["tcp_user_timeout"] = user_timeout_ms
    return psycopg.connect(*args, **{**params, **libpq}, autocommit=True)


class SchemaOutdated(RuntimeError):
    """The database is behind the code; the message names the command that fixes it."""


class NoDatabase(SchemaOutdated):
    """The SQLite file does not exist yet; reading commands do not create it."""


def require_database(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist, naming `broadcaster db upgrade`."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):
        database = database.removeprefix("file:").partition("?")[0]
    if not Path(database).exists():
        raise NoDatabase(f"no database yet at {database}: run `broadcaster db upgrade`")


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout so the
    daemon and CLI commands can share one file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A monitor asking /healthz must hear "unreachable" in seconds, not after TCP gives up.
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def current_heads(engine: Engine) -> set[str]:
    """The revisions recorded in the database; empty before the first upgrade."""
    with Reader.of(engine) as reader:
        return read.current_heads(reader)


def upgrade(engine: Engine) -> tuple[set[str], set[str]]:
    """Bring the schema to the code's heads; returns (before, after)."""
    from alembic import command

    before = current_heads(engine)
    command.upgrade(alembic_config(engine), "heads")
    return before, current_heads(engine)


def check_schema(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not the one this code expects."""
    current = current_heads(engine)
    expected = expected_heads()
    if current == expected:
        return
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(engine))
    known = {rev.revision for rev in script.walk_revisions()}
    if not current:
        state = "has no broadcaster tables yet"
    elif current - known:
        state = f"is at revision {', '.join(sorted(current))}, newer than this broadcaster"
    else:
        state = f"is at revision {', '.join(sorted(current))}, older than this broadcaster"
    raise SchemaOutdated(
        f"the database {engine.url.render_as_string(hide_password=True)} {state} "
        f"(expected {', '.join(sorted(expected))}); run `broadcaster db upgrade`"
    )


Bind = Engine | Connection


def session_factory(engine: Bind) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(bind: Bind) -> Iterator[Connection]:
    """A connection in a transaction: a new one on an engine, or the caller's own.

    Passing a connection lets an operation (`broadcaster.operations`) check its
    rules, act and write its audit row in one transaction: all or nothing.
    """
    if isinstance(bind, Connection):
        yield bind
        return
    with bind.begin() as conn:
        yield conn


@contextmanager
def session_scope(engine: Bind) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    On a connection already in a transaction the session joins it, and its
    commit leaves the outer transaction for the caller to finish.
    """
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
