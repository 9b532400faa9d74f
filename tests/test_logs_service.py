"""Logs as a service needs them: rotation, journald, exception text."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import structlog

from broadcaster.logging import configure_logging
from tests.conftest import REPO
from tests.daemon_fixtures import (
    broadcaster,
    config_factory,
    daemon_factory,
    task_schedule,
    wait_for,
)

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def daemons():
    yield from daemon_factory()


def events(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["event"] for line in path.read_text().splitlines() if line]


def test_daemon_logs_into_a_new_file_after_logrotate_renames_the_old(
    tmp_path: Path, daemons
) -> None:
    schedule = {"t.toml": task_schedule("t", '["03:00"]', "true")}
    config = config_factory(tmp_path, f"sqlite:///{tmp_path / 'data' / 'broadcaster.db'}")(schedule)
    broadcaster(config, "db", "upgrade")
    log = tmp_path / "data" / "broadcaster.log"
    daemons(config).start()
    wait_for(lambda: "daemon.started" in events(log), 10, "daemon.started in the log")
    rotated = log.rename(log.with_name("broadcaster.log.1"))  # what logrotate does

    broadcaster(config, "reload")

    wait_for(lambda: "planner.reloaded" in events(log), 10, "planner.reloaded in the new file")
    assert "planner.reloaded" not in events(rotated)
    assert "daemon.started" in events(rotated)


def test_an_exception_reaches_the_json_record_as_text(tmp_path: Path) -> None:
    path = tmp_path / "broadcaster.log"
    configure_logging(path, TZ, console=False)
    try:
        {}["carrier"]
    except KeyError:
        structlog.get_logger("test").exception("sms.batch_failed", carrier="viettel")
    try:
        raise ValueError("port 99999 out of range")
    except ValueError:
        import logging

        logging.getLogger("uvicorn.error").error("server failed", exc_info=True)
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first["event"] == "sms.batch_failed" and first["severity"] == "error"
    assert "Traceback" in first["exception"] and "KeyError: 'carrier'" in first["exception"]
    assert "exc_info" not in first
    assert "ValueError: port 99999 out of range" in second["exception"]


def test_the_file_is_created_by_the_first_record_not_by_setup(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "broadcaster.log"
    configure_logging(path, TZ, console=False)
    assert not path.parent.exists()
    structlog.get_logger("test").info("db.upgraded")
    assert events(path) == ["db.upgraded"]


JOURNAL_PROBE = textwrap.dedent("""\
    import logging, sys
    from pathlib import Path
    from zoneinfo import ZoneInfo
    import structlog
    from broadcaster.logging import configure_logging
    configure_logging(Path(sys.argv[1]), ZoneInfo("UTC"), "debug", console=False)
    log = structlog.get_logger("probe")
    log.debug("probe.debug")
    log.info("probe.info", area="167")
    log.warning("probe.warning")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("probe.error")
    """)


def run_with_stderr_file(tmp_path: Path, journal: bool) -> tuple[str, Path]:
    err = tmp_path / "stderr.txt"
    log = tmp_path / "broadcaster.log"
    with err.open("wb") as stream:
        stat = os.fstat(stream.fileno())
        env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
        if journal:
            env["JOURNAL_STREAM"] = f"{stat.st_dev}:{stat.st_ino}"
        subprocess.run(
            [sys.executable, "-c", JOURNAL_PROBE, str(log)],
            env=env,
            cwd=REPO,
            stderr=stream,
            check=True,
            timeout=60,
        )
    return err.read_text(), log


def test_under_journald_each_record_reaches_stderr_once_with_its_priority(
    tmp_path: Path,
) -> None:
    stderr, log = run_with_stderr_file(tmp_path, journal=True)
    lines = stderr.splitlines()
    firsts = [line for line in lines if "probe." in line]
    assert [line[:3] for line in firsts] == ["<7>", "<6>", "<4>", "<3>"]
    assert firsts[1].startswith("<6>probe.info") and "area=167" in firsts[1]
    assert all(line.startswith(("<3>", "<4>", "<6>", "<7>")) for line in lines)
    assert "<3>RuntimeError: boom" in lines  # the traceback, line by line, at error priority
    assert "\x1b[" not in stderr  # no colours in the journal
    assert events(log) == ["probe.debug", "probe.info", "probe.warning", "probe.error"]


def test_an_inherited_journal_stream_that_is_not_our_stderr_is_ignored(tmp_path: Path) -> None:
    err = tmp_path / "stderr.txt"
    with err.open("wb") as stream:
        env = {**os.environ, "JOURNAL_STREAM": "1:2"}  # a parent's journal, not this stderr
        subprocess.run(
            [sys.executable, "-c", JOURNAL_PROBE, str(tmp_path / "x.log")],
            env=env,
            cwd=REPO,
            stderr=stream,
            check=True,
            timeout=60,
        )
    assert err.read_text() == ""  # console=False and stderr is not the journal


def test_db_upgrade_under_systemd_logs_its_event_once(tmp_path: Path) -> None:
    config = config_factory(tmp_path, f"sqlite:///{tmp_path / 'data' / 'broadcaster.db'}")({})
    err = tmp_path / "stderr.txt"
    with err.open("wb") as stream:
        stat = os.fstat(stream.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        subprocess.run(
            [sys.executable, "-m", "broadcaster", "--config", str(config), "db", "upgrade"],
            env=env,
            cwd=REPO,
            stderr=stream,
            stdout=subprocess.DEVNULL,
            check=True,
            timeout=60,
        )
    upgraded = [line for line in err.read_text().splitlines() if "db.upgraded" in line]
    assert len(upgraded) == 1 and upgraded[0].startswith("<6>db.upgraded")


def test_logs_follow_goes_on_in_the_new_file_after_rotation(
    cli, sample_config: Path, people
) -> None:
    cli("db", "upgrade")
    log = sample_config.parent / "data" / "broadcaster.log"
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "broadcaster",
            "--config",
            str(sample_config),
            "logs",
            "--follow",
            "--event",
            "level.*",
            "--format",
            "json",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None

    def next_level_line(level: str) -> dict:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            cli("level", "set", "167", level, "--reason", "r")
            ready, _, _ = select.select([follower.stdout], [], [], 1.0)
            if ready:
                return json.loads(follower.stdout.readline())
        raise AssertionError(f"the follower printed nothing for level {level}")

    try:
        assert next_level_line("5.2")["level"] == "5.2"  # following the first file
        log.rename(log.with_name("broadcaster.log.1"))
        record = next_level_line("5.3")
        while record["level"] != "5.3":  # repeats of 5.2 written before the rename
            record = json.loads(follower.stdout.readline())
        assert log.exists() and "5.3" in log.read_text()
    finally:
        follower.terminate()
        follower.wait(timeout=10)
