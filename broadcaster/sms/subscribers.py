"""Import subscribers from CSV: normalise, route, report bad rows, upsert in bulk.

Every bad row is reported with its line number and reason and the rest are
imported; re-importing the same file changes nothing. Rows go to the
database in large executemany batches (COPY into a temporary table on
PostgreSQL), so a million rows take seconds, not hours.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sqlalchemy import Engine, text

from broadcaster.sms.numbers import CarrierRouter, InvalidNumber, normalise_msisdn

log = structlog.get_logger(__name__)
REQUIRED = ("msisdn", "commune")
BATCH = 50_000

_UPSERT = (
    "INSERT INTO subscribers (msisdn, commune, carrier, language, name) "
    "VALUES (:msisdn, :commune, :carrier, :language, :name) "
    "ON CONFLICT (msisdn) DO UPDATE SET commune = excluded.commune, "
    "carrier = excluded.carrier, language = excluded.language, name = excluded.name"
)


class ImportFileError(ValueError):
    """The file cannot be imported at all (missing columns, unreadable)."""


@dataclass
class ImportReport:
    """What an import did: rows read, imported, and each rejected line with why."""

    read: int = 0
    imported: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Row:
    msisdn: str
    commune: str
    carrier: str
    language: str | None
    name: str | None


def parse_rows(
    lines: Iterable[dict[str, str]],
    router: CarrierRouter,
    communes: set[str],
    report: ImportReport,
    first_line: int = 2,
) -> Iterator[Row]:
    """Yield valid rows; record every invalid one in the report with its line number."""
    for line_no, record in enumerate(lines, start=first_line):
        report.read += 1
        try:
            msisdn = normalise_msisdn(record.get("msisdn") or "")
        except InvalidNumber as exc:
            report.errors.append((line_no, f"msisdn: {exc}"))
            continue
        commune = (record.get("commune") or "").strip()
        if commune not in communes:
            report.errors.append((line_no, f"commune: unknown commune code {commune!r}"))
            continue
        carrier = router.route(msisdn)
        if carrier is None:
            report.errors.append((line_no, f"msisdn: no carrier prefix matches {msisdn}"))
            continue
        yield Row(
            msisdn,
            commune,
            carrier,
            (record.get("language") or "").strip() or None,
            (record.get("name") or "").strip() or None,
        )


def import_csv(
    engine: Engine,
    path: Path,
    router: CarrierRouter,
    communes: set[str],
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import a subscriber CSV (columns msisdn, commune; optional language, name)."""
    report = ImportReport()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ImportFileError(
                f"{path}: line 1: missing column(s) {', '.join(missing)}; "
                f"the header must name at least msisdn, commune (optional: language, name)"
            )
        reader.fieldnames = header
        rows = parse_rows(reader, router, communes, report)
        batch: dict[str, Row] = {}
        for row in rows:
            batch[row.msisdn] = row  # a number listed twice: the later line wins
            if len(batch) >= BATCH:
                report.imported += _write(engine, batch.values())
                batch.clear()
                if progress:
                    progress(report.read)
        report.imported += _write(engine, batch.values())
        if progress:
            progress(report.read)
    log.info(
        "sms.subscribers_imported",
        file=str(path),
        read=report.read,
        imported=report.imported,
        rejected=len(report.errors),
    )
    return report


def _write(engine: Engine, rows: Iterable[Row]) -> int:
    values = list(rows)
    if not values:
        return 0
    if engine.dialect.name == "postgresql":
        return _copy_pg(engine, values)
    with engine.begin() as conn:
        conn.execute(text(_UPSERT), [r.__dict__ for r in values])
    return len(values)


def _copy_pg(engine: Engine, rows: list[Row]) -> int:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS subscribers_in "
            "(msisdn text, commune text, carrier text, language text, name text) "
            "ON COMMIT DELETE ROWS"
        )
        with cur.copy("COPY subscribers_in FROM STDIN") as copy:  # type: ignore[attr-defined]
            for r in rows:
                copy.write_row((r.msisdn, r.commune, r.carrier, r.language, r.name))
        cur.execute(
            "INSERT INTO subscribers (msisdn, commune, carrier, language, name) "
            "SELECT msisdn, commune, carrier, language, name FROM subscribers_in "
            "ON CONFLICT (msisdn) DO UPDATE SET commune = excluded.commune, "
            "carrier = excluded.carrier, language = excluded.language, name = excluded.name"
        )
        raw.commit()
    finally:
        raw.close()
    return len(rows)
