"""Schedule edits that reach the public wait for an approver; SMS cadences have a floor;
`schedule check` counts the SMS and their cost a day per level."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.schedule_approval import load_checked
from broadcaster.schedule_files import ScheduleError
from broadcaster.schedule_review import effective
from tests.account_fixtures import add_people, run_cli
from tests.sms_fixtures import seed_subscribers, settings_for, write_config

SMS = (
    '[[programme]]\nid = "{id}"\nchannel = "sms"\npriority = "{priority}"\nareas = ["{area}"]\n'
    'content = {{ text = "Rua tay thuong xuyen" }}\n[programme.levels."{level}"]\n{cadence}\n'
)
TASK = (
    '[[programme]]\nid = "noop"\nchannel = "task"\nareas = ["167"]\n'
    'content = { command = ["true"] }\n[programme.levels."1"]\ntimes = ["03:00"]\n'
)


@pytest.fixture
def setup(tmp_path: Path, db_url: str):
    config = write_config(tmp_path, db_url, {"viettel": 2775})
    with config.open("a", encoding="utf-8") as out:
        out.write('[planner]\nschedules = "schedules"\n')
    text = config.read_text().replace("rate = 5000\n", "rate = 5000\nprice_per_part = 800\n")
    config.write_text(text)
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "base.toml").write_text(TASK)
    return config, tmp_path / "schedules"


def _write(folder: Path, name: str, **kw: str) -> None:
    values = {
        "area": "167",
        "level": "1",
        "cadence": 'times = ["07:00"]',
        "priority": "normal",
        **kw,
    }
    (folder / f"{name}.toml").write_text(SMS.format(**values), encoding="utf-8")


def test_sms_every_below_the_floor_is_an_error_naming_file_programme_and_key(setup):
    config, folder = setup
    _write(folder, "flood", id="flood", cadence='every = "1s"', priority="emergency")
    with pytest.raises(ScheduleError) as caught:
        load_checked(settings_for(config))
    (problem,) = caught.value.problems
    assert "flood.toml" in problem and "'flood'" in problem and 'levels."1"' in problem
    assert "1h" in problem and "min_interval" in problem
    out = run_cli(config, "schedule", "check", expect=1).output
    assert "min_interval" in out


def test_schedule_check_counts_sms_and_cost_a_day_per_level(setup, engine):
    config, folder = setup
    seed_subscribers(engine, 30)  # 10 in each of three communes of district 167
    _write(folder, "daily", id="daily", cadence='times = ["07:00", "17:00"]')
    out = run_cli(config, "schedule", "check").output
    assert "SMS a day at l 1: 2 blasts, 60 messages, 60 parts, 48,000 VND" in out
    assert "awaiting `broadcaster schedule approve`: added daily" in out


def test_only_approved_forms_of_public_programmes_run(setup, db_url, tmp_path):
    config, folder = setup
    people = add_people(db_url, tmp_path)
    _write(folder, "daily", id="daily")
    settings = settings_for(config)
    running, held = effective(None, load_checked(settings))
    assert [p.id for p in running] == ["noop"] and held == ("daily",)
    run_cli(config, "schedule", "approve", "--yes", *people.as_approver)
    approved = load_checked(settings)
    _write(folder, "daily", id="daily", cadence='times = ["07:00", "19:00"]')  # raised
    running, held = effective(approved, load_checked(settings))
    assert held == ("daily",)
    assert [len(p.cadences["1"].times) for p in running if p.id == "daily"] == [1]
    (folder / "daily.toml").unlink()  # removing applies at once
    assert [p.id for p in effective(approved, load_checked(settings))[0]] == ["noop"]


def test_schedule_approve_needs_an_approver_covering_the_programme_areas(setup, db_url, tmp_path):
    config, folder = setup
    people = add_people(db_url, tmp_path, area="05437")
    _write(folder, "daily", id="daily")
    refused = run_cli(config, "schedule", "approve", "--yes", *people.as_approver, expect=1).output
    assert "not on 167" in refused
    refused = run_cli(config, "schedule", "approve", "--yes", expect=1).output
    assert "approver" in refused
