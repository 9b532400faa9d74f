"""`broadcaster plan` and `broadcaster schedule check` on the sample config."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import REPO


def _use_schedules(config: Path, folder: Path) -> None:
    with config.open("a", encoding="utf-8") as out:
        out.write(f'\n[planner]\nschedules = "{folder}"\n')


@pytest.fixture
def samples(sample_config: Path) -> None:
    _use_schedules(sample_config, REPO / "schedules")


def test_plan_json_lists_a_day_with_offsets(cli, samples):
    cli("db", "upgrade")
    rows = json.loads(cli("plan", "--from", "2021-09-10", "--format", "json").output)
    assert Counter(r["programme"] for r in rows) == {
        "district-bulletin": 72, "commune-bulletin": 48, "van-round": 1,
        "epidemic-map-refresh": 1}
    first = rows[0]
    assert first["at"] == "2021-09-10T06:00:00+07:00"
    assert {"programme", "channel", "area", "at", "priority"} <= set(first)


def test_plan_follows_a_level_set_and_filters_by_area(cli, samples, people):
    cli("db", "upgrade")
    cli("level", "set", "167", "5.3", "--reason", "test")
    # Tomorrow: today's plan runs from local midnight, before the level was set.
    tomorrow = (datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")) + timedelta(days=1)).date().isoformat()
    day = cli("plan", "--from", tomorrow, "--area", "05440", "--format", "json").output
    rows = json.loads(day)
    assert {r["area"] for r in rows} == {"05440", "167"}
    assert Counter(r["programme"] for r in rows)["ai-bulletin"] == 3
    table = cli("plan", "--from", tomorrow, "--area", "05440").output
    assert "Xã Linh Thông" in table and "level 5.3" in table


def test_schedule_check_passes_the_samples(cli, samples):
    out = cli("schedule", "check").output
    assert out.startswith("ok: 6 programmes in 6 files")
    assert "warning" not in out


def test_schedule_check_warns_of_overruns_and_emergency_overlaps(cli, sample_config: Path):
    folder = sample_config.parent / "schedules"
    folder.mkdir()
    (folder / "clash.toml").write_text("""
[[programme]]
id = "long"
channel = "loudspeaker"
priority = "emergency"
areas = ["167/communes"]
duration = "90m"
content = { clips = ["a"] }
[programme.levels."5.2"]
times = ["06:00", "07:00"]

[[programme]]
id = "also-emergency"
channel = "relay"
priority = "emergency"
areas = ["05440"]
content = { source = "vov" }
[programme.levels."5.1"]
times = ["06:30"]
""", encoding="utf-8")
    _use_schedules(sample_config, folder)
    out = cli("schedule", "check", "--days", "1").output
    assert "warning: level 5.2: 'long' at 06:00 lasts 90 min and runs into 'long' in 23 areas" \
        in out  # in the 24th commune it runs into 'also-emergency' first
    assert "level 5.2: 'long' at 06:00 lasts 90 min and runs into 'also-emergency' in 1 area" \
        in out
    assert "emergency items 'long' and 'also-emergency' overlap at 06:00 in 1 area" in out


def test_schedule_check_fails_with_file_programme_and_key(cli, sample_config: Path):
    folder = sample_config.parent / "schedules"
    folder.mkdir()
    text = (REPO / "schedules" / "van-rounds.toml").read_text(encoding="utf-8")
    (folder / "van.toml").write_text(text.replace("per_day = 2", "per_day = 0"), encoding="utf-8")
    _use_schedules(sample_config, folder)
    out = cli("schedule", "check", expect=1).output
    assert "van.toml:4: programme 'van-round' (programme[0]): " in out
    assert 'levels."5.2".per_day: Input should be greater than or equal to 1' in out


def test_plan_svg_draws_every_planned_occurrence_and_the_missed_in_red(cli, samples, tmp_path,
                                                                       sample_config):
    import xml.etree.ElementTree as ET
    from datetime import UTC, datetime, timedelta

    from broadcaster.config import load_settings
    from broadcaster.planner import plan
    from broadcaster.store.db import make_engine
    from broadcaster.store.dispatch import DispatchState, claim
    from broadcaster.timeline import RED
    from tests.planner_fixtures import sample_programmes

    cli("db", "upgrade")
    rows = json.loads(cli("plan", "--from", "2021-09-10", "--format", "json").output)
    settings = load_settings(sample_config)
    start = datetime(2021, 9, 9, 17, tzinfo=UTC)
    first = plan(sample_programmes(settings), [], settings.registry(), start,
                 start + timedelta(days=1), settings.tz)[0]
    engine = make_engine(settings.storage_url)
    claim(engine, [first], now=start, node="test", state=DispatchState.MISSED)
    engine.dispose()
    out = tmp_path / "plan.svg"
    assert "wrote" in cli("plan", "--from", "2021-09-10", "--svg", str(out)).output
    marks = ET.parse(out).getroot().findall(".//{http://www.w3.org/2000/svg}rect[@data-at]")
    assert len(marks) == len(rows)
    red = [m for m in marks if m.get("fill") == RED]
    assert [(m.get("data-programme"), m.get("data-area")) for m in red] == [
        (first.programme, first.area)]
