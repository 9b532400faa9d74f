"""The config file: the sample loads, and every broken config says file, key and fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from broadcaster.cli import main
from broadcaster.config import ConfigError, load_settings
from tests.conftest import REPO


def broken(tmp_path: Path, old: str, new: str) -> Path:
    body = (REPO / "config.toml").read_text(encoding="utf-8")
    assert old in body, old
    path = tmp_path / "broken.toml"
    path.write_text(body.replace(old, new, 1), encoding="utf-8")
    return path


def test_sample_config_describes_dinh_hoa_with_its_communes_languages_and_stations() -> None:
    settings = load_settings(REPO / "config.toml")
    registry = settings.registry()
    communes = registry.communes_under("167")
    assert registry.get("167").name == "Huyện Định Hóa"
    assert len(communes) == 24
    assert all(c.station is not None and "vi" in c.languages for c in communes)
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert settings.http.bind == "127.0.0.1:8080"
    assert set(settings.carriers) == {"viettel", "vinaphone", "mobifone"}
    assert all(c.host == "127.0.0.1" for c in settings.carriers.values())


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(REPO / "config.toml")
    assert settings.data_dir == REPO / "data"
    assert settings.storage_url == f"sqlite:///{REPO / 'data' / 'broadcaster.db'}"
    assert settings.log_file == REPO / "data" / "broadcaster.log"


def test_environment_overrides_storage_url_and_carrier_password() -> None:
    env = {
        "BROADCASTER_STORAGE_URL": "postgresql+psycopg://u@db/x",
        "BROADCASTER_CARRIERS_VIETTEL_PASSWORD": "s3cret",
    }
    settings = load_settings(REPO / "config.toml", environ=env)
    assert settings.storage_url == "postgresql+psycopg://u@db/x"
    assert settings.carriers["viettel"].password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_gia_lai_example_loads_with_five_levels_and_case_thresholds() -> None:
    settings = load_settings(REPO / "examples" / "gia-lai.toml")
    ladder = settings.ladder_objects()["gia-lai"]
    assert ladder.names == ("1", "2", "3", "4", "5")
    assert ladder.has_thresholds


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'rate = 200\nwindow = 50\nprefixes = ["086"',
            'rate = "fast"\nwindow = 50\nprefixes = ["086"',
            r"broken\.toml: carriers\.viettel\.rate: Input should be a valid number",
        ),
        (
            'province = "19"\nlevel = "5.1"',
            'province = "19"\nlevel = "9"',
            r"broken\.toml: areas\.districts\[0\]\.level: unknown level '9' on ladder "
            r"'thai-nguyen'; valid levels: 1, 2, 3, 4, 5\.1, 5\.2, 5\.3",
        ),
        (
            'code = "05440"',
            'code = "05437"',
            r"broken\.toml: areas: area code '05437' is used more than once",
        ),
        (
            'timezone = "Asia/Ho_Chi_Minh"',
            'timezone = "Asia/Ho_Chi_Minh"\ncolour = "red"',
            r"broken\.toml: colour: Extra inputs are not permitted",
        ),
        (
            'code = "05443"\nname = "Xã Lam Vỹ"\ndistrict = "167"',
            'code = "05443"\nname = "Xã Lam Vỹ"\ndistrict = "999"',
            r"broken\.toml: areas\.communes\[2\]\.district: commune '05443' is under no known "
            r"district \('999'\); known districts: 167",
        ),
        (
            'ladder = "thai-nguyen"',
            'ladder = "nowhere"',
            r"broken\.toml: areas\.provinces\[0\]\.ladder: unknown ladder 'nowhere'; "
            r"known ladders: thai-nguyen",
        ),
        (
            'timezone = "Asia/Ho_Chi_Minh"',
            'timezone = "Mars/Olympus"',
            r"broken\.toml: timezone: Value error, unknown time zone 'Mars/Olympus'",
        ),
        (
            'url = "http://127.0.0.1:8000/dinh-hoa.mp3"',
            'url = "dinh-hoa.mp3"',
            r"broken\.toml: relays\.dinh-hoa\.url: String should match pattern '\^https\?://",
        ),
    ],
    ids=[
        "wrong-type",
        "unknown-level",
        "duplicate-code",
        "unknown-key",
        "orphan-commune",
        "unknown-ladder",
        "unknown-zone",
        "relay-not-a-stream-url",
    ],
)
def test_broken_config_names_file_key_and_what_is_allowed(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    path = broken(tmp_path, old, new)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert any(re.search(expected, line) for line in caught.value.problems), caught.value.problems


def test_config_check_reports_every_problem_one_line_each_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = broken(tmp_path, "window = 50", "window = 0")
    path.write_text(
        path.read_text(encoding="utf-8").replace("port = 2776", 'port = "x"'), encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if "broken.toml: " in line]
    assert len(problems) == 2, result.output
    assert "carriers.viettel.window" in problems[0] + problems[1]
    assert "carriers.vinaphone.port" in problems[0] + problems[1]
    result = CliRunner().invoke(
        main, ["--config", str(path), "level", "set", "167", "5.2", "--reason", "x"]
    )
    assert result.exit_code == 1
    assert not (tmp_path / "data").exists()


def test_config_check_summarises_the_sample_without_secrets() -> None:
    result = CliRunner().invoke(main, ["config", "check", str(REPO / "config.toml")])
    assert result.exit_code == 0, result.output
    assert "24 communes" in result.output
    assert "thai-nguyen: 1 < 2 < 3 < 4 < 5.1 < 5.2 < 5.3" in result.output
    assert "viettel: 127.0.0.1:2775" in result.output
    assert "password" not in result.output.lower()
