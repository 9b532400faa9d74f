"""Alert-level ladders and the level in force for an area.

Levels are data: a ladder is an ordered tuple of named levels, optionally
with case-count thresholds. A level set on an area holds for every area below
it that has none of its own, so resolution walks up the tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from broadcaster.areas import AreaRegistry


@dataclass(frozen=True)
class Level:
    name: str
    label: str = ""
    min_cases: int | None = None


class UnknownLevel(LookupError):
    """Raised for a level name that is not on the area's ladder; lists the valid ones."""

    def __init__(self, level: str, ladder: Ladder) -> None:
        self.level = level
        self.ladder = ladder
        super().__init__(
            f"unknown level {level!r} on ladder {ladder.name!r}; "
            f"valid levels: {', '.join(ladder.names)}"
        )


@dataclass(frozen=True)
class Ladder:
    """An ordered list of levels, lowest first."""

    name: str
    title: str
    levels: tuple[Level, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(level.name for level in self.levels)

    def index(self, name: str) -> int:
        """Position of a level, so cadences can hold "from this level up"."""
        try:
            return self.names.index(name)
        except ValueError:
            raise UnknownLevel(name, self) from None

    def level(self, name: str) -> Level:
        return self.levels[self.index(name)]

    @property
    def has_thresholds(self) -> bool:
        return any(level.min_cases is not None for level in self.levels)

    def suggest(self, cases: int) -> Level:
        """The highest level whose case-count threshold `cases` reaches."""
        if cases < 0:
            raise ValueError(f"a case count cannot be negative (got {cases})")
        if not self.has_thresholds:
            raise ValueError(f"ladder {self.name!r} has no case-count thresholds")
        reached = [lv for lv in self.levels if lv.min_cases is not None and cases >= lv.min_cases]
        if not reached:
            return self.levels[0]
        return max(reached, key=lambda lv: lv.min_cases or 0)


@dataclass(frozen=True)
class LevelChange:
    """One audited decision: who set which level on which area, when and why."""

    area: str
    level: str
    at: datetime
    by: str
    reason: str
    previous: str | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("LevelChange.at must be timezone-aware")


@dataclass(frozen=True)
class InForce:
    """The level an area is at, and where that comes from."""

    area: str
    level: str
    since: datetime | None
    by: str | None
    reason: str | None
    inherited_from: str | None  # None when set on the area itself


def latest_changes(
    changes: Iterable[LevelChange], at: datetime | None = None
) -> dict[str, LevelChange]:
    """The last change per area, optionally as things stood at `at`."""
    latest: dict[str, LevelChange] = {}
    for change in sorted(changes, key=lambda c: c.at):
        if at is None or change.at <= at:
            latest[change.area] = change
    return latest


def level_in_force(
    code: str,
    registry: AreaRegistry,
    ladders: Mapping[str, Ladder],
    latest: Mapping[str, LevelChange],
) -> InForce:
    """Resolve an area's level: its own latest change, else its nearest ancestor's,
    else the configured starting level, else the lowest level of its ladder."""
    chain = [registry.get(code), *registry.ancestors(code)]
    for area in chain:
        change = latest.get(area.code)
        if change is not None:
            return InForce(
                area=code,
                level=change.level,
                since=change.at,
                by=change.by,
                reason=change.reason,
                inherited_from=None if area.code == code else area.code,
            )
    for area in chain:
        if area.level is not None:
            origin = None if area.code == code else area.code
            return InForce(code, area.level, None, None, None, origin)
    return InForce(code, ladders[chain[0].ladder].levels[0].name, None, None, None, None)


def validate_change(
    registry: AreaRegistry, ladders: Mapping[str, Ladder], area: str, level: str
) -> Ladder:
    """Check that `level` exists on the ladder of `area` before anything is written."""
    ladder = ladders[registry.get(area).ladder]
    ladder.index(level)
    return ladder
