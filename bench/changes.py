"""Benchmark how soon a committed level change wakes a listener in another connection.

Run by hand: `.venv/bin/python bench/changes.py [--url URL] [--changes 50]`
(PostgreSQL; the URL defaults to the tests' database). Prints figures; asserts
nothing. Works in a schema of its own, dropped afterwards. Each change is set
the way the CLI and API set it (`store.levels.set_level`, one transaction);
the time runs from its return (the commit is already done) to the listener's
wake. What a node then does (read its markers, replan) comes on top: see
`tests/test_daemon_changes.py` for the whole path through three real nodes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from broadcaster.config import load_settings  # noqa: E402
from broadcaster.store.changes import ChangeListener, Topic  # noqa: E402
from broadcaster.store.db import make_engine, upgrade  # noqa: E402
from broadcaster.store.levels import set_level  # noqa: E402

URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=URL)
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    settings = load_settings(ROOT / "config.toml")
    registry, ladders = settings.registry(), settings.ladder_objects()
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.url else "?"
    engine = make_engine(f"{args.url}{sep}options=-csearch_path%3D{schema}")
    try:
        upgrade(engine)
        woken = threading.Event()
        listener = ChangeListener(engine)
        listener.subscribe([Topic.LEVELS], woken.set)
        listener.start()
        assert woken.wait(10), "the listener never connected"
        time.sleep(0.2)
        woken.clear()
        waits = []
        for i in range(args.changes):
            level = ("5.2", "5.1")[i % 2]
            now = datetime.now(UTC)
            set_level(
                engine, registry, ladders, area="167", level=level, by="b", reason="b", now=now
            )
            committed = time.monotonic()
            assert woken.wait(5), "no wake within 5 s"
            waits.append((time.monotonic() - committed) * 1000)
            woken.clear()
        listener.stop()
        waits.sort()
        median = statistics.median(waits)
        print(
            f"commit -> wake, {len(waits)} level changes: median {median:.2f} ms, "
            f"p90 {waits[int(len(waits) * 0.9) - 1]:.2f} ms, max {waits[-1]:.2f} ms"
        )
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
