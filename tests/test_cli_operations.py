"""The CLI as operators and scripts meet it: fast to start, quiet in pipes, and
reading commands that leave nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import REPO, write_config

HEAVY = (
    "sqlalchemy",
    "alembic",
    "uvicorn",
    "starlette",
    "apscheduler",
    "prometheus_client",
    "pydub",
    "psycopg",
    "smpplib",
)
READING = [
    ("status",),
    ("level", "show"),
    ("level", "history"),
    ("sms", "status", "1"),
    ("stations",),
    ("areas",),
    ("plan",),
    ("config", "check"),
    ("logs",),
    ("db", "status"),
]


def run(*argv: str, config: Path | None = None, **kwargs: object) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BROADCASTER_") and k != "JOURNAL_STREAM"
    }
    prefix = ["--config", str(config)] if config else []
    return subprocess.run(
        [sys.executable, "-m", "broadcaster", *prefix, *argv],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """The sample config, schedules and audio in a folder with no database, log or data."""
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'data' / 'broadcaster.db'}")
    for folder in ("schedules", "audio"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    return config


def tree(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*")}


def test_help_imports_no_database_web_scheduler_or_smpp_library() -> None:
    probe = (
        "import sys\n"
        "from broadcaster.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "level" in result.stdout and "status" in result.stdout  # it did list the commands
    assert result.stdout.strip().splitlines()[-1] == "loaded:"


def test_status_loads_neither_the_web_server_nor_the_scheduler(fresh: Path) -> None:
    run("db", "upgrade", config=fresh, check=True)
    probe = (
        "import sys\n"
        "from broadcaster.cli import main\n"
        "try:\n"
        f"    main(['--config', {str(fresh)!r}, 'status'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('loaded:' + ','.join(m for m in ('uvicorn', 'starlette', 'apscheduler', 'alembic',"
        " 'smpplib', 'pydub')"
        " if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "daemon: not running" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "loaded:"


def test_version_is_the_installed_package_version() -> None:
    result = run("--version", check=True)
    assert result.stdout.strip() == f"broadcaster, version {version('broadcaster')}"


@pytest.mark.parametrize("argv", READING, ids=" ".join)
def test_reading_commands_on_a_fresh_config_create_no_file(fresh: Path, argv: tuple) -> None:
    before = tree(fresh.parent)
    result = run(*argv, config=fresh)
    assert tree(fresh.parent) == before, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    if argv[0] in ("status", "level", "sms", "plan", "db"):
        assert result.returncode == 1
        assert "no database yet" in result.stderr and "broadcaster db upgrade" in result.stderr


def test_reading_commands_after_upgrade_leave_the_folder_as_they_found_it(fresh: Path) -> None:
    run("db", "upgrade", config=fresh, check=True)
    before = tree(fresh.parent)
    for argv in READING:
        if argv != ("logs",):
            result = run(*argv, config=fresh)
            assert "Traceback" not in result.stderr, argv
    assert tree(fresh.parent) - before <= {Path("data/broadcaster.log")}
    assert not (fresh.parent / "data" / "station-token-secret").exists()


def test_a_closed_pipe_ends_the_command_quietly(fresh: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "--config", str(fresh), "areas"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before a line is written, like `| head -0`
    code = process.wait(60)
    assert process.stderr.read() == b""
    assert code in (0, 141)


@pytest.mark.parametrize(
    ("command", "first"), [("areas", "19  Tỉnh Thái Nguyên"), ("stations", "nothing published")]
)
def test_a_pipe_to_head_prints_the_first_line_and_no_error(
    fresh: Path, command: str, first: str
) -> None:
    result = subprocess.run(
        f"{sys.executable} -m broadcaster --config {fresh} {command} | head -1",
        shell=True,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert len(result.stdout.splitlines()) == 1 and first in result.stdout
    assert result.stderr == ""


def test_schema_check_finds_the_heads_alembic_finds() -> None:
    from alembic.script import ScriptDirectory

    from broadcaster.store.db import alembic_config, expected_heads

    script = ScriptDirectory.from_config(alembic_config(None))  # type: ignore[arg-type]
    assert expected_heads() == set(script.get_heads())
