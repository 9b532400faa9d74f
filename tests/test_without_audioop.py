"""Python 3.13 removed `audioop`: the CLI and the daemon must run without it.

A `sitecustomize` on PYTHONPATH puts an import blocker in front of every other
finder in the real processes, for `audioop` and for `pydub` (which needs it), so
any import of either, however indirect, fails as it would on 3.13.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from broadcaster.audio.tokens import Tokens
from tests.audio_fixtures import SECRET, audio_config, seed_store
from tests.conftest import REPO, free_port, write_config
from tests.daemon_fixtures import config_factory, daemon_factory, wait_for

BLOCKER = '''
import sys


class _Removed:
    """Refuse audioop (gone in Python 3.13) and pydub (built on it)."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"audioop", "pydub"}:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


sys.meta_path.insert(0, _Removed())
'''


@pytest.fixture
def without_audioop(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, f"sqlite:///{tmp_path / 'data' / 'broadcaster.db'}")


@pytest.fixture
def daemons() -> Iterator:
    yield from daemon_factory()


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_the_blocker_makes_audioop_unimportable(without_audioop: dict[str, str]) -> None:
    done = run(without_audioop, "-c", "import audioop")
    assert done.returncode == 1
    assert "No module named 'audioop' (blocked)" in done.stderr


def test_cli_commands_run_without_audioop(without_audioop: dict[str, str], config: Path) -> None:
    helped = run(without_audioop, "-m", "broadcaster", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "Usage:" in helped.stdout
    checked = run(without_audioop, "-m", "broadcaster", "--config", str(config), "config", "check")
    assert checked.returncode == 0, checked.stderr
    assert f"{config}: OK" in checked.stdout
    upgraded = run(without_audioop, "-m", "broadcaster", "--config", str(config), "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr


def test_daemon_publishes_mixed_slots_without_audioop(
    without_audioop: dict[str, str], tmp_path: Path, normalised_store: Path, daemons
) -> None:
    port = free_port()
    db = f"sqlite:///{tmp_path / 'data' / 'broadcaster.db'}"
    schedules = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "schedules").glob("*.toml")}
    config = audio_config(config_factory(tmp_path, db)(schedules), port, render_slots=True)
    seed_store(normalised_store, tmp_path / "data")
    upgraded = run(without_audioop, "-m", "broadcaster", "--config", str(config), "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    daemon = daemons(config)
    daemon.env = without_audioop
    daemon.start(timeout=60)
    token = Tokens(SECRET.encode()).for_station("linh-thong")

    def mixed_slot() -> dict | None:
        today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
        url = f"http://127.0.0.1:{port}/stations/linh-thong/{today}.json"
        day = httpx.get(url, params={"token": token})
        slots = day.json()["slots"] if day.status_code == 200 else []
        return next((s for s in slots if s.get("audio_url")), None)

    slot = wait_for(mixed_slot, 120, "a slot mixed into one file by the daemon")
    audio = httpx.get(slot["audio_url"])
    assert audio.status_code == 200 and len(audio.content) > 1000
    assert daemon.terminate() == 0
