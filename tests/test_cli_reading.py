"""Reading commands answer from the database driver and the validated settings cache,
without SQLAlchemy, pydantic or structlog, and the cache never hides a config change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.account_fixtures import add_people
from tests.conftest import REPO, write_config

SKIPPED = ("sqlalchemy", "pydantic", "structlog", "alembic", "psycopg")
SAMPLE_BLAST = ("--area", "167", "--text", "test")


CLEAN = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith("BROADCASTER_") and k != "JOURNAL_STREAM"
}


def run(
    config: Path, *argv: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "broadcaster", "--config", str(config), *argv],
        env={**CLEAN, **(env or {})},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def loaded_by(config: Path, *argv: str) -> tuple[str, list[str]]:
    """The output of a command run in a fresh interpreter, and which of SKIPPED it imported."""
    probe = (
        "import sys\n"
        "from broadcaster.cli import main\n"
        "try:\n"
        f"    main(['--config', {str(config)!r}, *{list(argv)!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('loaded:' + ','.join(m for m in {SKIPPED!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=CLEAN,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *output, last = result.stdout.strip().splitlines()
    return "\n".join(output), [m for m in last.removeprefix("loaded:").split(",") if m]


@pytest.fixture
def upgraded(tmp_path: Path) -> Path:
    """The sample config on an upgraded SQLite database with one level change and a blast
    (the CLI tests run the reading path on PostgreSQL too)."""
    sample_config = write_config(tmp_path, f"sqlite:///{tmp_path / 'data' / 'broadcaster.db'}")
    run(sample_config, "db", "upgrade")
    add_people(f"sqlite:///{tmp_path / 'data' / 'broadcaster.db'}", tmp_path)  # acts as the login
    run(
        sample_config,
        "subscribers",
        "import",
        str(REPO / "examples" / "subscribers.csv"),
        check=False,
    )  # the sample list holds a deliberately malformed number
    run(sample_config, "level", "set", "167", "5.2", "--reason", "r")
    run(sample_config, "sms", "draft", *SAMPLE_BLAST)
    return sample_config


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("level", "show", "167"), "167  Huyện Định Hóa: level 5.2  (since "),
        (("level", "history"), "167  5.1 -> 5.2  by Nguyễn Văn A: r"),
        (("status",), "daemon: not running"),
        (("sms", "status", "1"), "blast 1 draft: total"),
        (("areas",), "19  Tỉnh Thái Nguyên"),
    ],
    ids=["level show", "level history", "status", "sms status", "areas"],
)
def test_reading_commands_load_neither_sqlalchemy_nor_pydantic_nor_structlog(
    upgraded: Path, argv: tuple[str, ...], expected: str
) -> None:
    output, loaded = loaded_by(upgraded, *argv)
    assert expected in output
    assert loaded == []


def test_an_edited_config_is_validated_again_not_read_from_the_cache(upgraded: Path) -> None:
    body = upgraded.read_text(encoding="utf-8")
    upgraded.write_text(body.replace("Huyện Định Hóa", "Huyện Định Hoá"), encoding="utf-8")
    assert "167  Huyện Định Hoá (district" in run(upgraded, "areas").stdout
    upgraded.write_text(
        body.replace('timezone = "Asia/Ho_Chi_Minh"', 'timezone = "Mars/Base"'), encoding="utf-8"
    )
    broken = run(upgraded, "level", "show", check=False)
    assert broken.returncode == 1
    assert "timezone: Value error, unknown time zone 'Mars/Base'" in broken.stderr


def test_an_environment_override_is_validated_not_read_from_the_cache(upgraded: Path) -> None:
    broken = run(upgraded, "status", env={"BROADCASTER_TIMEZONE": "Mars/Base"}, check=False)
    assert broken.returncode == 1
    assert "BROADCASTER_TIMEZONE" in broken.stderr and "Mars/Base" in broken.stderr


def test_a_database_behind_the_code_is_refused_by_the_reading_path_too(upgraded: Path) -> None:
    import sqlite3

    database = upgraded.parent / "data" / "broadcaster.db"
    with sqlite3.connect(database) as connection:
        connection.execute("DELETE FROM alembic_version WHERE version_num = 'm001'")
    refused = run(upgraded, "level", "show", check=False)
    assert refused.returncode == 1
    assert "older than this broadcaster" in refused.stderr
    assert "run `broadcaster db upgrade`" in refused.stderr


@pytest.mark.parametrize("data_dir", ["data", "ABSOLUTE"])
def test_the_cache_gives_what_validation_gives_and_misses_after_any_change(
    tmp_path: Path, data_dir: str
) -> None:
    from broadcaster.config import load_settings
    from broadcaster.essentials import Essentials, cached, save

    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'data' / 'broadcaster.db'}")
    folder = str(tmp_path / "elsewhere") if data_dir == "ABSOLUTE" else data_dir
    body = config.read_text(encoding="utf-8").replace('data_dir = "data"', f'data_dir = "{folder}"')
    config.write_text(body, encoding="utf-8")
    environ = {"PATH": "/usr/bin"}
    settings = load_settings(config, environ)
    assert cached(config, environ) is None  # nothing saved yet
    save(settings, environ)
    assert (settings.data_dir / "settings-cache.json").is_file()
    assert cached(config, environ) == Essentials.of(settings)
    assert cached(config, {**environ, "BROADCASTER_SMS_MAX_PARTS": "3"}) is None
    config.write_text(body + "\n# edited\n", encoding="utf-8")
    assert cached(config, environ) is None


def test_status_reads_the_daemons_row_on_either_backend(cli, engine) -> None:
    from datetime import UTC, datetime

    from broadcaster.store import dispatch as store

    beat = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    store.write_status(
        engine,
        now=beat,
        started=True,
        node="node-1",
        pid=4242,
        report={"levels": {"167": "5.2"}, "planned_at": beat.isoformat()},
    )
    status = json.loads(cli("status", "--format", "json").output)
    assert status["running"] is False  # its last heartbeat is long past
    assert (status["node"], status["pid"]) == ("node-1", 4242)
    assert status["heartbeat_at"] == status["started_at"] == "2020-01-02T10:04:05+07:00"
    assert status["planned_at"] == "2020-01-02T10:04:05+07:00"
    assert status["levels"] == {"167": "5.2"}
    assert (
        "daemon: not running (node-1; heartbeat 2020-01-02T10:04:05+07:00)" in cli("status").output
    )
