"""Shared fixtures: a real database per test (SQLite always, PostgreSQL when
BROADCASTER_TEST_PG_URL names one), the sample config pointed at it, and the CLI."""

from __future__ import annotations

import os
import re
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, create_engine, text

from broadcaster.cli import main
from broadcaster.store.db import make_engine, upgrade

REPO = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BROADCASTER_TEST_PG_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


# For a test whose claim is about what a player, agent or stream does, not about storage
# (the database only holds its fixtures): one backend shows what both would, at half the
# wall time. Tests of anything the backends do differently keep both.
STORAGE_AGNOSTIC = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend; on PostgreSQL a schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'broadcaster.db'}"
        return
    assert PG_URL is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A database upgraded to the current schema."""
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def write_config(tmp_path: Path, db_url: str, source: Path = REPO / "config.toml") -> Path:
    """Copy a config into tmp_path with its data, log and database there."""
    body = source.read_text(encoding="utf-8")
    # The sample leaves [storage] url to its default under data_dir; point it here.
    body, named = re.subn(r"(?m)^\[storage\]$", f'[storage]\nurl = "{db_url}"', body, count=1)
    assert named, f"{source} has no [storage] table to point at the test database"
    port = free_port()  # daemons in tests serve the station API; never on a shared port
    body = body.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    # Nor do their senders reach the sample carriers' ports (2775–2777), where a demo's
    # SMSC may listen: they would bind to it and take its delivery receipts.
    body = re.sub(r"(?m)^port = \d+$", lambda _: f"port = {free_port()}", body)
    target = tmp_path / source.name
    target.write_text(body, encoding="utf-8")
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sample_config(tmp_path: Path, db_url: str) -> Path:
    return write_config(tmp_path, db_url)


@pytest.fixture
def cli(sample_config: Path) -> Callable[..., Result]:
    """Run `broadcaster --config <sample> ARGS…` in-process; fails loudly on a crash."""

    def run(*args: str, expect: int = 0) -> Result:
        result = CliRunner().invoke(main, ["--config", str(sample_config), *args])
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == expect, result.output
        return result

    return run


@pytest.fixture
def broadcaster_cmd() -> list[str]:
    """The command line that runs broadcaster as a real process."""
    return [sys.executable, "-m", "broadcaster"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`long_running` modules first: under xdist a module is one unit of work, and one
    that waits minutes of real time, handed out last, would run on alone after every
    other worker had finished."""
    items.sort(key=lambda item: item.get_closest_marker("long_running") is None)


# --- audio (issue 5): its fixtures live in tests/audio_fixtures.py ----------------------
pytest_plugins = [
    "tests.audio_fixtures",
    "tests.account_fixtures",
    "tests.browser_fixtures",
    "tests.console_fixtures",
]
