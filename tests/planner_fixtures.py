"""Helpers for the planner tests: the sample configs and a way to write schedules."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

from broadcaster.areas import AreaRegistry
from broadcaster.cadence import QuietHours, parse_time
from broadcaster.config import Settings, load_settings
from broadcaster.levels import LevelChange
from broadcaster.programmes import Programme
from broadcaster.schedule_files import load_schedules, parse_schedule

REPO = Path(__file__).resolve().parent.parent
QUIET = QuietHours(parse_time("21:00"), parse_time("06:00"))


def settings(path: Path = REPO / "config.toml") -> Settings:
    return load_settings(path)


def sample_programmes(config: Settings) -> tuple[Programme, ...]:
    directory = config.path.resolve().parent / config.planner.schedules
    return load_schedules(
        directory, config.registry(), config.ladder_objects(), QUIET, config.relay_objects()
    )


def programmes_from(text: str, config: Settings, name: str = "test.toml") -> list[Programme]:
    """Parse an inline schedule file against a config's areas and ladders."""
    return parse_schedule(
        Path(name),
        textwrap.dedent(text),
        config.registry(),
        config.ladder_objects(),
        QUIET,
        config.relay_objects(),
    )


def set_at(area: str, level: str, at: datetime = datetime(2021, 9, 1, tzinfo=UTC)) -> LevelChange:
    return LevelChange(area, level, at, "test", "test")


def registry(config: Settings) -> AreaRegistry:
    return config.registry()
