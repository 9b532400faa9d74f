"""The daemon's morning report: written once a day after `[report] at`, into data_dir/reports."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from broadcaster.config import load_settings
from broadcaster.report.writer import ReportWriter
from broadcaster.store.db import make_engine, upgrade

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def test_yesterdays_report_is_written_once_after_the_configured_time(
    sample_config: Path, db_url: str
) -> None:
    settings = load_settings(sample_config)
    engine = make_engine(db_url)
    upgrade(engine)
    clock = [datetime(2026, 12, 1, 7, 29, tzinfo=HCM)]
    writer = ReportWriter(settings, engine, clock=lambda: clock[0])
    assert writer.write_due() == []
    clock[0] = datetime(2026, 12, 1, 7, 31, tzinfo=HCM)
    (html,) = writer.write_due()
    assert html.endswith("reports/daily-2026-11-30-167.html")
    page = Path(html).read_text(encoding="utf-8")
    assert "Báo cáo tình hình thực hiện ngày 2026-11-30" in page
    # no station was heard all day: each is listed offline for the whole day
    assert page.count("24 giờ 0 phút") == 24 and "Xã Linh Thông" in page
    for suffix in (".json", ".csv"):
        assert Path(html).with_suffix(suffix).is_file()
    assert writer.write_due() == []
    engine.dispose()
