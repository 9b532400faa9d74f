"""Benchmark a /metrics scrape at millions of message rows, against the GROUP BY it replaced.

Run by hand: `.venv/bin/python bench/metrics.py [--rows 3000000] [--url URL] [--scrapes 20]`.
Prints figures; asserts nothing. Fills `sms_messages` with `--rows` rows spread
over three carriers and seven states (one `INSERT … SELECT`, so the counter
triggers run as they do when a blast expands), then times what a scrape
runs: the registry of the station API rendered by `generate_latest`. The
baseline, measured in the same run on the same rows, is the query the
scrape used to make (`GROUP BY carrier, state` over the messages). Goal: a
scrape ≤ 50 ms at 3 M rows.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from broadcaster.metrics import register_service_metrics  # noqa: E402
from broadcaster.store.db import make_engine, upgrade  # noqa: E402

STATES = ("queued", "sending", "submitted", "delivered", "failed", "expired", "cancelled")
CHUNK = 500_000


def fill(engine: Engine, rows: int) -> float:
    """Insert `rows` messages of one blast set-based; return the seconds it took."""
    now = datetime.now(UTC)
    began = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sms_blasts (id, text, unaccented, encoding, parts, priority, exercise,"
                " areas, state, created_at, created_by) VALUES (1, 'bench', false, 'gsm', 1,"
                " 'routine', false, '[]', 'approved', :now, 'bench')"
            ),
            {"now": now},
        )
    states = " ".join(f"WHEN {i} THEN '{s}'" for i, s in enumerate(STATES))
    series = (
        "generate_series(:low, :high) AS i"
        if engine.dialect.name == "postgresql"
        else "(WITH RECURSIVE s(i) AS (SELECT :low UNION ALL SELECT i + 1 FROM s"
        " WHERE i < :high) SELECT i FROM s)"
    )
    for low in range(0, rows, CHUNK):
        high = min(low + CHUNK, rows) - 1
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO sms_messages (blast_id, msisdn, carrier, rank, state, queued_at,"
                    " attempts) SELECT 1, '09' || i, CASE i % 3 WHEN 0 THEN 'viettel' WHEN 1 THEN"
                    f" 'vinaphone' ELSE 'mobifone' END, 1, CASE i % 7 {states} END, :now, 0"
                    f" FROM {series}"
                ),
                {"low": low, "high": high, "now": now},
            )
        print(f"  {high + 1:,} rows", flush=True)
    return time.perf_counter() - began


def timed(action: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--url", default=None, help="database URL (default: SQLite in /tmp)")
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    try:
        engine = make_engine(args.url or f"sqlite:///{tmp / 'metrics.db'}")
        upgrade(engine)
        print(f"filling {args.rows:,} messages on {engine.dialect.name}")
        seconds = fill(engine, args.rows)
        print(f"filled in {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s, counters included)")
        registry = CollectorRegistry()
        register_service_metrics(registry, engine)

        def group_by() -> object:
            with engine.connect() as conn:
                return conn.execute(
                    text(
                        "SELECT carrier, state, count(*) FROM sms_messages GROUP BY carrier, state"
                    )
                ).all()

        scrape = timed(lambda: generate_latest(registry), args.scrapes)
        baseline = timed(group_by, max(3, args.scrapes // 5))
        print(f"{'':<38} {'best':>9} {'median':>9}")
        for name, values in (
            ("scrape (counter tables, whole /metrics)", scrape),
            ("baseline: GROUP BY over the messages", baseline),
        ):
            best, median = min(values) * 1000, statistics.median(values) * 1000
            print(f"{name:<38} {best:>7.1f}ms {median:>7.1f}ms")
        ratio = statistics.median(scrape) / statistics.median(baseline)
        print(f"ratio (median): the scrape takes {ratio:.3f} of the GROUP BY alone")
        engine.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
