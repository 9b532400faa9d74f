"""The daemon as a real process: replanning, no double fires, reload, stop, catch-up."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broadcaster.store import dispatch as store
from broadcaster.store.levels import load_changes
from tests.conftest import REPO
from tests.daemon_fixtures import (
    broadcaster,
    clock_times,
    config_factory,
    daemon_factory,
    now,
    task_schedule,
    wait_for,
)


@pytest.fixture
def daemon_config(tmp_path: Path, db_url: str):
    return config_factory(tmp_path, db_url)


@pytest.fixture
def daemons():
    yield from daemon_factory()


SAMPLES = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "schedules").glob("*.toml")}


def _report(engine: Engine) -> dict:
    row = store.read_status(engine)
    return json.loads(row.report) if row else {}


def test_level_set_in_another_process_replans_within_two_seconds(
    engine, daemon_config, daemons, people
):
    config = daemon_config(SAMPLES)
    daemons(config).start()
    assert "ai-bulletin" not in _report(engine)["planned"]  # degree 1: no AI bulletin
    broadcaster(config, "level", "set", "167", "5.3", "--reason", "Chỉ thị 16")
    report = wait_for(
        lambda: (r := _report(engine)) and r["levels"].get("167") == "5.3" and r,
        timeout=5,
        what="the daemon to replan at degree 3",
    )
    (change,) = load_changes(engine)
    elapsed = (datetime.fromisoformat(report["planned_at"]) - change.at).total_seconds()
    print(f"replanned {elapsed:.2f} s after the level change")
    assert 0 < elapsed < 2.0, f"replanned {elapsed:.2f} s after the change"
    assert report["planned"]["ai-bulletin"] >= 5  # 3 a day over the next 48 h
    map_refreshes = report["planned"]["epidemic-map-refresh"]
    assert 7 <= map_refreshes <= 8  # every 6 h over 48 h


def test_kill_9_and_restart_fires_every_occurrence_and_again_only_those_cut_short(
    engine, daemon_config, daemons, tmp_path: Path
):
    fired = tmp_path / "fired.txt"
    slots = 8
    first = now() + timedelta(seconds=6)  # a late start catches up, ticks then run side by side
    command = f'echo "$BROADCASTER_AT" >> {fired}; sleep 0.3'
    config = daemon_config({"tick.toml": task_schedule("tick", clock_times(first, slots), command)})
    daemon = daemons(config).start()
    wait_for(lambda: fired.exists() and len(fired.read_text().split()) >= 2, 20, "two ticks")
    daemon.process.kill()  # SIGKILL: no cleanup, maybe mid-task
    daemon.process.wait(5)
    again = daemons(config).start()
    last = first + timedelta(seconds=slots - 1)
    wait_for(
        lambda: any(
            r.at == last.replace(microsecond=0) and r.state == "done"
            for r in store.rows_for(engine, "tick")
        ),
        30,
        "the last tick",
    )
    assert again.terminate() == 0
    runs = Counter(fired.read_text().split())
    rows = store.rows_for(engine, "tick")
    assert len(rows) == slots
    assert {r.state for r in rows} == {"done"}  # none left claimed by the killed daemon
    assert set(runs) == {r.at.isoformat() for r in rows}
    refired = {r.at.isoformat() for r in rows if r.attempts == 2}
    assert {at for at, n in runs.items() if n > 1} <= refired, f"fired twice: {runs}"
    assert max(runs.values()) <= 2
    assert len(refired) <= 4  # the executor's threads


def test_invalid_edit_keeps_the_schedule_and_a_valid_one_applies(
    engine, daemon_config, daemons, tmp_path: Path
):
    config = daemon_config(SAMPLES)
    daemon = daemons(config).start()
    before = _report(engine)["planned"]
    folder = tmp_path / "schedules"
    (folder / "broken.toml").write_text(
        SAMPLES["van-rounds.toml"].replace('"van-round"', '"extra-van"').replace("08:00", "8am"),
        encoding="utf-8",
    )
    broadcaster(config, "reload")
    errors = wait_for(
        lambda: [e for e in _report(engine)["errors"] if e["event"] == "planner.reload_rejected"],
        5,
        "the rejection",
    )
    assert "broken.toml" in errors[0]["detail"] and "'8am'" in errors[0]["detail"]
    assert _report(engine)["planned"] == before
    (folder / "broken.toml").unlink()
    (folder / "extra.toml").write_text(
        SAMPLES["van-rounds.toml"].replace('"van-round"', '"extra-van"'), encoding="utf-8"
    )
    daemon.process.send_signal(signal.SIGHUP)
    planned = wait_for(
        lambda: "extra-van" in (p := _report(engine)["planned"]) and p, 5, "the reload on SIGHUP"
    )
    assert planned["extra-van"] == planned["van-round"]


def test_sigterm_returns_in_flight_work_within_ten_seconds(
    engine, daemon_config, daemons, tmp_path: Path
):
    later = task_schedule("slow", clock_times(now() + timedelta(hours=12), 1), "sleep 60")
    daemon = daemons(daemon_config({"slow.toml": later})).start()
    # whole seconds: 3 s ahead is 2-3 s, room for a loaded machine to reload first (an
    # instant already past when the reload plans is not run; CI saw 1 s ahead missed)
    soon = task_schedule("slow", clock_times(now() + timedelta(seconds=3), 1), "sleep 60")
    (tmp_path / "schedules" / "slow.toml").write_text(soon, encoding="utf-8")
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: store.rows_for(engine, "slow"), 15, "the slow task to start")
    stopping = time.monotonic()
    assert daemon.terminate() == 0
    assert time.monotonic() - stopping < 10
    (row,) = store.rows_for(engine, "slow")
    assert row.state == "failed"
    assert store.read_status(engine).stopped_at is not None


def test_after_downtime_late_work_runs_within_grace_and_older_is_missed(
    engine, daemon_config, daemons, tmp_path: Path
):
    fired = tmp_path / "fired.txt"
    start = now()
    store.write_status(engine, now=start - timedelta(hours=2), started=True, node="old", pid=1)
    times = clock_times(start - timedelta(minutes=50), 2, step=timedelta(minutes=30))
    config = daemon_config(
        {"late.toml": task_schedule("late", times, f"date >> {fired}")},
        planner='[planner.grace]\ntask = "30m"',
    )
    daemons(config).start()
    rows = wait_for(
        lambda: (
            (r := store.rows_for(engine, "late"))
            and len(r) == 2
            and all(x.state != "claimed" for x in r)
            and r
        ),
        10,
        "the catch-up",
    )
    assert [r.state for r in rows] == ["missed", "done"]  # 50 min late, 20 min late
    assert len(fired.read_text().splitlines()) == 1


def test_watchdog_pings_when_systemd_asks_for_them(engine, daemon_config, daemons):
    daemon = daemons(daemon_config(SAMPLES))
    daemon.env = {"WATCHDOG_USEC": "1000000"}
    daemon.start()
    daemon.expect("WATCHDOG=1", timeout=5)
    assert daemon.terminate() == 0


def test_a_task_command_sees_only_its_named_environment_not_the_daemons_secrets(
    engine, daemon_config, daemons, tmp_path: Path
):
    printed = tmp_path / "env.txt"
    schedule = task_schedule(
        "env", clock_times(now() + timedelta(seconds=2), 1), f"env > {printed}"
    )
    schedule = schedule.replace(
        "content = {", 'content = { env = { MAP_STYLE = "dark" }, pass_env = ["HTTPS_PROXY"], '
    )
    daemon = daemons(daemon_config({"env.toml": schedule}))
    daemon.env = {
        "BROADCASTER_CARRIERS_VIETTEL_PASSWORD": "s3cretpw",
        "BROADCASTER_AUDIO_TOKEN_SECRET": "token-s3cret-0123456789abcdef0123",
        "HTTPS_PROXY": "http://proxy.example:3128",
        "UNRELATED": "x",
    }
    daemon.start()
    wait_for(lambda: any(r.state == "done" for r in store.rows_for(engine, "env")), 20, "the task")
    env = dict(line.split("=", 1) for line in printed.read_text().splitlines() if "=" in line)
    assert "s3cret" not in printed.read_text()
    assert "UNRELATED" not in env
    assert env["MAP_STYLE"] == "dark" and env["HTTPS_PROXY"] == "http://proxy.example:3128"
    assert env["BROADCASTER_PROGRAMME"] == "env" and env["BROADCASTER_AREA"] == "167"
    assert {k for k in env if k.startswith("BROADCASTER_")} == {
        "BROADCASTER_PROGRAMME",
        "BROADCASTER_AREA",
        "BROADCASTER_AT",
        "BROADCASTER_OCCURRENCE",
        "BROADCASTER_DATA_DIR",
    }
    assert daemon.terminate() == 0
