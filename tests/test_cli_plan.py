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
    """Point a copied config at `folder` for schedules and at the sample audio library."""
    with config.open("a", encoding="utf-8") as out:
        out.write(
            f'\n[planner]\nschedules = "{folder}"\n\n[audio]\nlibrary_dir = "{REPO / "audio"}"\n'
        )


@pytest.fixture
def samples(sample_config: Path) -> None:
    _use_schedules(sample_config, REPO / "schedules")


def test_plan_json_lists_a_day_with_offsets(cli, samples):
    cli("db", "upgrade")
    rows = json.loads(cli("plan", "--from", "2021-09-10", "--format", "json").output)
    assert Counter(r["programme"] for r in rows) == {
        "district-bulletin": 72,
        "commune-bulletin": 48,
        "van-round": 1,
        "epidemic-map-refresh": 1,
    }
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
    (folder / "clash.toml").write_text(
        """
[[programme]]
id = "long-round"
channel = "van"
areas = ["167"]
duration = "90m"
content = { clips = ["gian-cach"] }
[programme.levels."5.2"]
times = ["06:00", "07:00"]

[[programme]]
id = "alarm"
channel = "loudspeaker"
priority = "emergency"
areas = ["167/communes"]
content = { clips = ["thong-bao-khan"] }
[programme.levels."5.1"]
times = ["06:00"]

[[programme]]
id = "also-emergency"
channel = "relay"
priority = "emergency"
areas = ["05440"]
content = { relay = "dinh-hoa" }
[programme.levels."5.1"]
times = ["06:00"]
""",
        encoding="utf-8",
    )
    _use_schedules(sample_config, folder)
    out = cli("schedule", "check", "--days", "1").output
    assert (
        "warning: level 5.2: 'long-round' at 06:00 lasts 90 min and runs into 'long-round' "
        "in 24 areas" in out
    )
    assert "emergency items 'alarm' and 'also-emergency' overlap at 06:00 in 1 area" in out


RELAY_THAT_CANNOT_FIT = """
[[programme]]
id = "district-news"
channel = "relay"
priority = "priority"
areas = ["167/communes"]
duration = "30m"
content = { relay = "dinh-hoa" }
[programme.levels."5.1"]
times = ["06:00"]
duration = "15m"
[programme.levels."5.2"]
times = ["06:00"]

[[programme]]
id = "own-news"
channel = "loudspeaker"
areas = ["05440", "05443"]
content = { clips = ["gian-cach"] }
[programme.levels."5.1"]
times = ["06:30"]
"""


def test_schedule_check_fails_naming_file_programme_level_time_and_stations_when_a_relay_cannot_air(
    cli, sample_config: Path
):
    folder = sample_config.parent / "schedules"
    folder.mkdir()
    (folder / "news.toml").write_text(RELAY_THAT_CANNOT_FIT, encoding="utf-8")
    _use_schedules(sample_config, folder)
    result = cli("schedule", "check", "--days", "2", expect=1)
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert lines == [
        f"error: {folder / 'news.toml'}: programme 'district-news': level {level}: at 06:00 "
        "'dinh-hoa' would not air at 2 stations: does not fit before the next slot at 06:30"
        for level in ("5.2", "5.3")
    ]
    assert "ok:" not in result.output


def test_plan_marks_the_occurrences_that_would_not_air(cli, sample_config: Path, people):
    folder = sample_config.parent / "schedules"
    folder.mkdir()
    (folder / "news.toml").write_text(RELAY_THAT_CANNOT_FIT, encoding="utf-8")
    _use_schedules(sample_config, folder)
    cli("db", "upgrade")
    cli("level", "set", "167", "5.2", "--reason", "test")
    tomorrow = (datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date() + timedelta(days=1)).isoformat()
    rows = json.loads(cli("plan", "--from", tomorrow, "--format", "json").output)
    relays = {r["area"]: r for r in rows if r["programme"] == "district-news"}
    assert len(relays) == 24
    assert {a for a, r in relays.items() if not r["airs"]} == {"05440", "05443"}
    assert relays["05440"]["not_aired"] == [
        {
            "item": "dinh-hoa",
            "reason": "does not fit before the next slot",
            "stations": ["linh-thong"],
        }
    ]
    assert all(r["airs"] for r in rows if r["programme"] == "own-news")
    table = cli("plan", "--from", tomorrow, "--area", "05440").output
    assert "district-news" in table and "NOT AIRED at 1 station: does not fit" in table


def test_schedule_check_fails_with_file_programme_and_key(cli, sample_config: Path):
    folder = sample_config.parent / "schedules"
    folder.mkdir()
    text = (REPO / "schedules" / "van-rounds.toml").read_text(encoding="utf-8")
    (folder / "van.toml").write_text(text.replace("per_day = 2", "per_day = 0"), encoding="utf-8")
    _use_schedules(sample_config, folder)
    out = cli("schedule", "check", expect=1).output
    assert "van.toml:4: programme 'van-round' (programme[0]): " in out
    assert 'levels."5.2".per_day: Input should be greater than or equal to 1' in out


def test_plan_svg_draws_every_planned_occurrence_and_the_missed_in_red(
    cli, samples, tmp_path, sample_config
):
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
    first = plan(
        sample_programmes(settings),
        [],
        settings.registry(),
        start,
        start + timedelta(days=1),
        settings.tz,
    )[0]
    engine = make_engine(settings.storage_url)
    claim(engine, [first], now=start, node="test", state=DispatchState.MISSED)
    engine.dispose()
    out = tmp_path / "plan.svg"
    assert "wrote" in cli("plan", "--from", "2021-09-10", "--svg", str(out)).output
    marks = ET.parse(out).getroot().findall(".//{http://www.w3.org/2000/svg}rect[@data-at]")
    assert len(marks) == len(rows)
    red = [m for m in marks if m.get("fill") == RED]
    assert [(m.get("data-programme"), m.get("data-area")) for m in red] == [
        (first.programme, first.area)
    ]
