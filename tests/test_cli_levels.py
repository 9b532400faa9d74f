"""Operators set, show and audit levels from the CLI; changes survive restarts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from click.testing import CliRunner

from broadcaster.cli import main


def test_commands_refuse_a_database_without_schema_and_name_the_fix(cli) -> None:
    result = cli("level", "show", expect=1)
    assert "run `broadcaster db upgrade`" in result.output


def test_level_set_then_show_json_reports_own_and_inherited_levels(cli, people) -> None:
    cli("level", "set", "167", "5.2", "--reason", "Chỉ thị 16", "--by", "Nguyễn Văn A")
    cli("level", "set", "05440", "5.3", "--reason", "ổ dịch", *people.as_approver)
    rows = {
        r["area"]: r for r in json.loads(cli("level", "show", "167", "--format", "json").output)
    }
    assert len(rows) == 25
    assert rows["167"]["level"] == "5.2" and "inherited_from" not in rows["167"]
    assert rows["167"]["by"] == "Nguyễn Văn A" and rows["167"]["since"].endswith("+07:00")
    assert rows["05443"]["level"] == "5.2" and rows["05443"]["inherited_from"] == "167"
    assert rows["05440"]["level"] == "5.3" and "inherited_from" not in rows["05440"]


def test_history_lists_who_when_why_and_the_level_before(cli, people) -> None:
    cli("level", "set", "167", "5.2", "--reason", "CT16")
    cli("level", "set", "167", "5.3", "--reason", "spread", *people.as_approver)
    history = json.loads(cli("level", "history", "05440", "--format", "json").output)
    assert [(h["previous"], h["level"], h["by"], h["reason"]) for h in history] == [
        ("5.1", "5.2", people.operator.name, "CT16"),
        ("5.2", "5.3", people.approver.name, "spread"),
    ]


def test_by_naming_another_account_is_refused_and_nothing_is_written(cli, people) -> None:
    refused = cli("level", "set", "167", "5.2", "--reason", "r", "--by", "Trần Thị B", expect=1)
    assert "not the acting account" in refused.output and "Nguyễn Văn A" in refused.output
    assert json.loads(cli("level", "history", "--format", "json").output) == []


def test_a_login_without_an_account_cannot_act(cli) -> None:
    cli("db", "upgrade")
    refused = cli("level", "set", "167", "5.2", "--reason", "r", expect=1)
    assert "no account is mapped to the Unix login" in refused.output
    assert "broadcaster users add" in refused.output


def test_setting_an_unknown_area_or_level_fails_with_the_valid_choices(cli, people) -> None:
    bad_area = cli("level", "set", "999", "5.2", "--reason", "x", expect=1)
    assert "unknown area '999'; known areas: 05437" in bad_area.output
    bad_level = cli("level", "set", "167", "9", "--reason", "x", expect=1)
    assert "valid levels: 1, 2, 3, 4, 5.1, 5.2, 5.3" in bad_level.output
    assert json.loads(cli("level", "history", "--format", "json").output) == []


def test_level_suggest_uses_the_ladder_with_thresholds(tmp_path: Path) -> None:
    config = Path(__file__).resolve().parent.parent / "examples" / "gia-lai.toml"
    result = CliRunner().invoke(
        main,
        ["--config", str(config), "level", "suggest", "--cases", "85", "--format", "json"],
        env={
            "BROADCASTER_DATA_DIR": str(tmp_path),
            "BROADCASTER_LOGGING_FILE": str(tmp_path / "broadcaster.log"),
        },
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["level"] == "4"


def test_level_change_survives_restart_and_appears_in_logs(
    sample_config: Path, broadcaster_cmd: list[str], people
) -> None:
    env = {**os.environ, "BROADCASTER_CONFIG": str(sample_config)}

    def run(*args: str) -> str:
        done = subprocess.run(
            [*broadcaster_cmd, *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("db", "upgrade")
    run("level", "set", "167", "5.3", "--reason", "giãn cách")
    shown = json.loads(run("level", "show", "05440", "--format", "json"))
    assert shown[0]["level"] == "5.3" and shown[0]["inherited_from"] == "167"
    logged = [
        json.loads(line)
        for line in run("logs", "--event", "level.*", "--format", "json").splitlines()
    ]
    assert [(r["event"], r["area"], r["level"], r["by"]) for r in logged] == [
        ("level.changed", "167", "5.3", people.operator.name)
    ]
