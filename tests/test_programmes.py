"""Schedule files: shapes, selectors, level inheritance, quiet hours, clear errors."""

from __future__ import annotations

from datetime import date, time, timedelta
from pathlib import Path

import pytest

from broadcaster.cadence import every, parse_duration, spread
from broadcaster.occurrence import Channel, Priority, Relay
from broadcaster.programmes import Trigger
from broadcaster.schedule_files import ScheduleError, load_schedules
from tests.planner_fixtures import QUIET, REPO, programmes_from, sample_programmes, settings

CONFIG = settings()

BULLETIN = """
[[programme]]
id = "bulletin"
channel = "loudspeaker"
areas = ["167/communes"]
content = {{ clips = ["c1"] }}
{levels}
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(ScheduleError) as caught:
        programmes_from(text, CONFIG)
    return caught.value.problems


def test_samples_load_with_every_commune_selected():
    programmes = {p.id: p for p in sample_programmes(CONFIG)}
    communes = [a.code for a in CONFIG.registry().communes_under("167")]
    assert programmes["district-bulletin"].areas == tuple(communes)
    assert programmes["van-round"].areas == ("167",)
    assert programmes["urgent-notice-sms"].trigger is Trigger.NOTICE
    assert programmes["ai-bulletin"].channel is Channel.TASK


def test_cadence_holds_for_levels_above_until_overridden():
    levels = """
    [programme.levels."5.1"]
    times = ["06:00"]
    [programme.levels."5.3"]
    times = ["06:00", "18:00"]
    """
    (programme,) = programmes_from(BULLETIN.format(levels=levels), CONFIG)
    assert programme.cadence_at("4") is None
    assert programme.cadence_at("5.2").times == (time(6),)
    assert programme.cadence_at("5.2").level == "5.1"
    assert programme.cadence_at("5.3").times == (time(6), time(18))


def test_off_stops_a_programme_from_a_level_up():
    levels = """
    [programme.levels."1"]
    times = ["06:00"]
    [programme.levels."5.2"]
    off = true
    """
    (programme,) = programmes_from(BULLETIN.format(levels=levels), CONFIG)
    assert programme.cadence_at("5.1") is not None
    assert programme.cadence_at("5.2") is None
    assert programme.cadence_at("5.3") is None


def test_per_day_spreads_slots_over_the_window_ends_included():
    assert spread(3, time(8), time(16)) == (time(8), time(12), time(16))
    assert spread(1, time(8), time(16)) == (time(8),)


def test_every_repeats_from_the_anchor_wrapping_at_midnight():
    assert every(timedelta(hours=6), time(3)) == (time(3), time(9), time(15), time(21))
    assert every(timedelta(hours=24), time(6)) == (time(6),)


def test_days_and_validity_limit_a_cadence():
    levels = """
    [programme.levels."5.1"]
    times = ["06:00"]
    days = ["mon", "fri"]
    from = 2021-09-06
    until = 2021-09-30
    """
    (programme,) = programmes_from(BULLETIN.format(levels=levels), CONFIG)
    cadence = programme.cadence_at("5.1")
    assert cadence.applies_on(date(2021, 9, 6))  # Monday
    assert not cadence.applies_on(date(2021, 9, 7))  # Tuesday
    assert not cadence.applies_on(date(2021, 10, 1))  # Friday, after the end
    assert not cadence.applies_on(date(2021, 9, 3))  # Friday, before the start


def test_bad_time_names_file_line_programme_key_and_what_is_allowed():
    levels = """
    [programme.levels."5.1"]
    times = ["06:00", "25:00"]
    """
    (problem,) = _errors(BULLETIN.format(levels=levels))
    assert problem.startswith("test.toml:3: programme 'bulletin' (programme[0]): ")
    assert 'levels."5.1".times[1]' in problem
    assert "'25:00'" in problem and "HH:MM" in problem


def test_unknown_level_lists_the_ladder():
    (problem,) = _errors(BULLETIN.format(levels='[programme.levels."6"]\ntimes = ["06:00"]'))
    assert 'levels."6": unknown level' in problem
    assert "1, 2, 3, 4, 5.1, 5.2, 5.3" in problem


def test_unknown_area_and_selector_are_refused():
    text = BULLETIN.format(levels='[programme.levels."5.1"]\ntimes = ["06:00"]')
    problems = _errors(text.replace('"167/communes"', '"999", "167/villages"'))
    assert any("areas[0]: unknown area '999'" in p and "167" in p for p in problems)
    assert any("areas[1]: unknown selector '167/villages'" in p for p in problems)


def test_content_must_fit_the_channel():
    text = BULLETIN.format(levels='[programme.levels."5.1"]\ntimes = ["06:00"]')
    problems = _errors(text.replace('clips = ["c1"]', 'text = "hello"'))
    assert any(
        "content.text: not used by a 'loudspeaker' programme; it takes clips" in p for p in problems
    )


def test_one_cadence_form_at_a_time():
    levels = '[programme.levels."5.1"]\ntimes = ["06:00"]\nevery = "6h"'
    (problem,) = _errors(BULLETIN.format(levels=levels))
    assert "give exactly one of" in problem


def test_routine_sms_in_quiet_hours_is_refused_and_emergency_allowed():
    text = """
    [[programme]]
    id = "reminder"
    channel = "sms"
    priority = "{priority}"
    areas = ["167"]
    content = {{ text = "Rửa tay" }}
    [programme.levels."5.1"]
    times = ["09:00", "22:30"]
    """
    (problem,) = _errors(text.format(priority="normal"))
    assert "routine SMS at 22:30 falls in quiet hours 21:00–06:00" in problem
    (programme,) = programmes_from(text.format(priority="emergency"), CONFIG)
    assert programme.priority is Priority.EMERGENCY


def test_duplicate_ids_across_files_are_refused(tmp_path: Path):
    source = (REPO / "schedules" / "van-rounds.toml").read_text(encoding="utf-8")
    (tmp_path / "a.toml").write_text(source, encoding="utf-8")
    (tmp_path / "b.toml").write_text(source, encoding="utf-8")
    with pytest.raises(ScheduleError) as caught:
        load_schedules(tmp_path, CONFIG.registry(), CONFIG.ladder_objects(), QUIET, {})
    assert "id is already used in" in caught.value.problems[0]


def test_every_problem_in_every_file_is_reported(tmp_path: Path):
    (tmp_path / "a.toml").write_text("[[programme]]\nid = 'x'\n", encoding="utf-8")
    (tmp_path / "b.toml").write_text("not toml = = 1", encoding="utf-8")
    with pytest.raises(ScheduleError) as caught:
        load_schedules(tmp_path, CONFIG.registry(), CONFIG.ladder_objects(), QUIET, {})
    text = "\n".join(caught.value.problems)
    assert "a.toml:2: programme 'x' (programme[0]): channel: Field required" in text
    assert "b.toml: not valid TOML" in text


def test_durations_read_hours_minutes_seconds():
    assert parse_duration("1h30m") == timedelta(minutes=90)
    with pytest.raises(ValueError, match="'15 minutes'"):
        parse_duration("15 minutes")


def test_a_relay_names_a_configured_stream_and_carries_its_url_and_fallback():
    relay = """
[[programme]]
id = "district"
channel = "relay"
areas = ["167/communes"]
content = {{ relay = "{name}" }}
[programme.levels."5.1"]
times = ["06:00"]
"""
    (programme,) = programmes_from(relay.format(name="dinh-hoa"), CONFIG)
    assert programme.content == Relay(
        "dinh-hoa", "http://127.0.0.1:8000/dinh-hoa.mp3", "ban-tin-huyen-du-phong"
    )
    [problem] = _errors(relay.format(name="vov"))
    assert problem.endswith(
        "content.relay: unknown relay 'vov'; name one of [relays.NAME] in the config: dinh-hoa"
    )


TASK = """
[[programme]]
id = "map"
channel = "task"
areas = ["167"]
content = {{ {content} }}
[programme.levels."5.1"]
times = ["06:00"]
"""


def test_a_task_command_names_its_environment():
    (programme,) = programmes_from(
        TASK.format(
            content='command = ["env"], env = { MAP_STYLE = "dark", A = "1" }, '
            'pass_env = ["HTTPS_PROXY"]'
        ),
        CONFIG,
    )
    assert programme.content.env == (("A", "1"), ("MAP_STYLE", "dark"))
    assert programme.content.pass_env == ("HTTPS_PROXY",)


def test_a_task_may_not_ask_for_the_daemons_own_variables():
    problems = _errors(
        TASK.format(
            content='command = ["env"], pass_env = ["BROADCASTER_CARRIERS_VIETTEL_PASSWORD"]'
        )
    )
    assert any("content.pass_env[0]" in p and "never given to a task" in p for p in problems)
    problems = _errors(TASK.format(content='url = "https://example.org", env = { A = "1" }'))
    assert any("content.env: only a task with a command takes it" in p for p in problems)
