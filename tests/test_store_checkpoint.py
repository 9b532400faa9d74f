"""The WAL checkpointer copies committed pages into a real SQLite database file."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from broadcaster.store.checkpoint import WalCheckpointer
from broadcaster.store.db import make_engine


def test_checkpointer_copies_the_wal_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{path}")
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA wal_autocheckpoint=0")  # only the checkpointer copies
        raw.cursor().execute("CREATE TABLE t (v TEXT)")
        raw.cursor().executemany("INSERT INTO t VALUES (?)", [("x" * 200,)] * 2000)
        raw.commit()
        before = path.stat().st_size
        with WalCheckpointer(engine, interval=0.01):
            deadline = time.monotonic() + 10
            while path.stat().st_size <= before and time.monotonic() < deadline:
                time.sleep(0.01)  # the checkpoint is another thread's; its effect is the file
        assert path.stat().st_size > before + 200 * 2000
    finally:
        raw.close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 2000
    engine.dispose()


def test_checkpointer_does_nothing_on_other_databases() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with WalCheckpointer(engine) as checkpointer:
        assert checkpointer._thread is None
