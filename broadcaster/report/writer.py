"""Write the daily report every morning into data_dir/reports, from the daemon.

A thread wakes each half minute; once the local time passes `[report] at`
and yesterday's files are not there, it builds them and writes JSON, CSV and
HTML (through a temporary file and a rename). A daemon started after that
time writes the morning's report at once, and two daemons writing the same
report write the same bytes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Engine

from broadcaster.areas import AreaKind, AreaRegistry
from broadcaster.audio.library import write_atomic
from broadcaster.report.daily import DailyReport, as_csv, as_html, as_json
from broadcaster.store.stations import prune_heartbeats

if TYPE_CHECKING:
    from broadcaster.config import Settings

log = structlog.get_logger(__name__)

CHECK_SECONDS = 30.0


def sole_district(registry: AreaRegistry) -> str:
    districts = [a.code for a in registry.all() if a.kind is AreaKind.DISTRICT]
    if len(districts) != 1:
        raise ValueError(f"name one --district of {', '.join(districts) or 'none configured'}")
    return districts[0]


def render(report: DailyReport, fmt: str, tz: tzinfo) -> str:
    if fmt == "csv":
        return as_csv(report, tz)
    if fmt == "html":
        return as_html(report, tz)
    return json.dumps(as_json(report, tz), ensure_ascii=False)


class ReportWriter:
    """The daemon's morning report thread."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="daily-report", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            try:
                self.write_due()
            except Exception as exc:  # noqa: BLE001 - a failed report must not stop the daemon
                log.error("report.daily_failed", detail=str(exc))
            if self._stop.wait(CHECK_SECONDS):
                return

    def write_due(self) -> list[str]:
        """Write yesterday's report for each district once today's `at` has passed."""
        from broadcaster.report.gather import build_daily

        settings = self._settings
        now = self._clock()
        local = now.astimezone(settings.tz)
        hour, minute = map(int, settings.report.at.split(":"))
        if local.time() < time(hour, minute):
            return []
        day = local.date() - timedelta(days=1)
        folder = settings.data_dir / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for area in settings.registry().all():
            if area.kind is not AreaKind.DISTRICT:
                continue
            stem = folder / f"daily-{day.isoformat()}-{area.code}"
            if stem.with_suffix(".html").exists():
                continue
            report = build_daily(settings, self._engine, area.code, day, now)
            for fmt in ("json", "csv", "html"):
                write_atomic(
                    stem.with_suffix(f".{fmt}"), render(report, fmt, settings.tz).encode("utf-8")
                )
            written.append(str(stem.with_suffix(".html")))
            kept = now - timedelta(days=settings.report.keep_days)
            prune_heartbeats(self._engine, kept)
            log.info(
                "report.daily_written",
                district=area.code,
                day=day.isoformat(),
                file=str(stem.with_suffix(".html")),
            )
        return written
