"""Programmes: what a channel says, to which areas, how often at each level. Pure values.

`schedule_files.py` reads and validates the schedule files into these; the
planner takes them as they are and never sees a file or the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from broadcaster.cadence import Cadence
from broadcaster.occurrence import Channel, Content, Priority


class Trigger(StrEnum):
    SCHEDULE = "schedule"  # planned from the cadences
    NOTICE = "notice"  # sent for each urgent notice; never planned


@dataclass(frozen=True)
class Programme:
    """One validated programme; `cadences` has an entry for every level of its ladder."""

    id: str
    title: str
    channel: Channel
    priority: Priority
    trigger: Trigger
    areas: tuple[str, ...]  # resolved area codes, registry order
    content: Content
    duration: timedelta | None
    ladder: str
    cadences: Mapping[str, Cadence | None]
    file: Path

    def cadence_at(self, level: str) -> Cadence | None:
        """The cadence in force at `level`; None when the programme is off there."""
        return self.cadences.get(level)
