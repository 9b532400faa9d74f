"""Admins read the JSON log with filters; secrets never reach it."""

from __future__ import annotations

import json
import select
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import structlog

from broadcaster.logging import configure_logging
from broadcaster.logquery import LogFilter, parse_since, read, render

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def records(*rows: dict) -> list[str]:
    return [json.dumps(r) for r in rows]


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "broadcaster.log"
    configure_logging(path, TZ, "debug", console=False)
    log = structlog.get_logger("test")
    log.info("level.changed", area="167", level="5.2", by="op")
    log.warning(
        "sms.bind_failed",
        carrier="viettel",
        password="hunter2",
        url="http://x/playlist.m3u?token=abc123&slot=1",
    )
    log.info("level.changed", area="05440", level="5.3", by="op")
    log.error("web.crash", station_token="t0k3n")
    return path


def test_file_gets_json_lines_with_local_offset_and_dotted_events(log_file: Path) -> None:
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [r["event"] for r in lines] == [
        "level.changed",
        "sms.bind_failed",
        "level.changed",
        "web.crash",
    ]
    assert all(r["time"].endswith("+07:00") for r in lines)
    assert lines[0]["severity"] == "info" and lines[0]["level"] == "5.2"


def test_passwords_and_tokens_never_reach_the_log(log_file: Path) -> None:
    text = log_file.read_text()
    assert "hunter2" not in text and "abc123" not in text and "t0k3n" not in text
    assert "token=***&slot=1" in text


def test_filters_by_event_pattern_area_and_severity(log_file: Path) -> None:
    assert [r["area"] for r in read(log_file, LogFilter(event="level.*"))] == ["167", "05440"]
    assert [r["level"] for r in read(log_file, LogFilter(area="05440"))] == ["5.3"]
    assert [r["event"] for r in read(log_file, LogFilter(severity="warning"))] == [
        "sms.bind_failed",
        "web.crash",
    ]


def test_since_accepts_durations_and_local_dates() -> None:
    assert parse_since("2h", NOW, TZ) == NOW - timedelta(hours=2)
    assert parse_since("2026-11-22", NOW, TZ) == datetime(2026, 11, 22, tzinfo=TZ)
    with pytest.raises(ValueError, match="use a duration such as 2h"):
        parse_since("yesterday", NOW, TZ)


def test_since_drops_older_records(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text(
        "\n".join(
            records(
                {"time": "2026-11-22T08:00:00+07:00", "event": "old"},
                {"time": "2026-11-22T16:30:00+07:00", "event": "new"},
            )
        )
        + "\nnot json\n"
    )
    since = parse_since("1h", NOW, TZ)  # 16:00 local
    assert [r["event"] for r in read(path, LogFilter(since=since))] == ["new"]


def test_readable_line_shows_local_time_event_and_context() -> None:
    line = render(
        {
            "time": "2026-11-22T03:00:00+00:00",
            "severity": "info",
            "event": "level.changed",
            "area": "167",
            "by": "Nguyễn Văn A",
        },
        TZ,
    )
    assert line == '2026-11-22 10:00:00+0700 info     level.changed  area=167 by="Nguyễn Văn A"'


def test_logs_command_filters_the_configured_file(cli, people) -> None:
    cli("db", "upgrade")
    cli("level", "set", "167", "5.2", "--reason", "r")
    cli("db", "upgrade")
    out = cli("logs", "--event", "level.*", "--area", "167").output.splitlines()
    assert len(out) == 1 and "level.changed" in out[0] and "area=167" in out[0]
    assert cli("logs", "--level", "error").output == ""


def test_follow_prints_records_as_another_process_writes_them(
    cli, people, sample_config: Path, broadcaster_cmd: list[str]
) -> None:
    cli("db", "upgrade")
    follower = subprocess.Popen(
        [
            *broadcaster_cmd,
            "--config",
            str(sample_config),
            "logs",
            "--follow",
            "--event",
            "level.*",
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        line = ""
        while not line and time.monotonic() < deadline:
            cli("level", "set", "167", "5.3", "--reason", "r")
            ready, _, _ = select.select([follower.stdout], [], [], 1.0)
            if ready:
                line = follower.stdout.readline()
        assert json.loads(line)["event"] == "level.changed"
    finally:
        follower.terminate()
        follower.wait(timeout=10)
