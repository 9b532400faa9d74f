"""Benchmark subscriber import and blast expansion at a million rows.

Run by hand: `.venv/bin/python bench/import.py [--rows 1000000] [--url sqlite:///…]`.
Goals (issue 4): 1,000,000 subscribers imported in ≤ 60 s, a 1,000,000-recipient
blast expanded in ≤ 10 s on SQLite.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broadcaster.sms import blast as blasts  # noqa: E402
from broadcaster.sms.link import utcnow  # noqa: E402
from broadcaster.sms.subscribers import import_csv  # noqa: E402
from broadcaster.store.db import make_engine, upgrade  # noqa: E402
from tests.sms_fixtures import draft_blast, router_of, settings_for, write_config  # noqa: E402

COMMUNES = ("05437", "05440", "05443")
PREFIXES = ("096", "086", "088", "091", "090")


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(4)
    with path.open("w", encoding="utf-8") as out:
        out.write("msisdn,commune,language,name\n")
        for i in range(rows):
            out.write(f"{rng.choice(PREFIXES)}{i:07d},{COMMUNES[i % 3]},vi,\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default=None, help="database URL (default: SQLite in /tmp)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    tmp = Path(tempfile.mkdtemp())
    url = args.url or f"sqlite:///{tmp / 'import.db'}"
    ports = {"viettel": 2775, "vinaphone": 2776, "mobifone": 2777}
    settings = settings_for(write_config(tmp, url, ports))
    engine = make_engine(url)
    upgrade(engine)
    csv_path = tmp / "subscribers.csv"
    write_csv(csv_path, args.rows)
    router = router_of(settings)

    start = time.perf_counter()
    report = import_csv(engine, csv_path, router, set(COMMUNES))
    imported = time.perf_counter() - start
    print(
        f"import: {report.imported:,} of {report.read:,} rows in {imported:.1f} s "
        f"({report.imported / imported:,.0f} rows/s) on {engine.dialect.name}"
    )

    start = time.perf_counter()
    report = import_csv(engine, csv_path, router, set(COMMUNES))
    print(f"re-import (idempotent): {time.perf_counter() - start:.1f} s")

    blast_id = draft_blast(engine, settings, "Thong bao khan.", now=utcnow())
    start = time.perf_counter()
    queued = blasts.approve(engine, router, settings.sms, blast_id, by="b", now=utcnow())
    expanded = time.perf_counter() - start
    print(f"expansion: {queued:,} recipients queued in {expanded:.1f} s")


if __name__ == "__main__":
    main()
