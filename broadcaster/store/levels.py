"""Reading and appending alert-level decisions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import structlog
from sqlalchemy import Engine, func, select

from broadcaster.areas import AreaRegistry
from broadcaster.levels import Ladder, LevelChange, latest_changes, level_in_force, validate_change
from broadcaster.store.db import Bind, session_scope
from broadcaster.store.models import LevelChangeRow

log = structlog.get_logger(__name__)


def load_changes(engine: Bind, areas: Iterable[str] | None = None) -> list[LevelChange]:
    """Every recorded change, oldest first, optionally only for some areas."""
    query = select(LevelChangeRow).order_by(LevelChangeRow.at, LevelChangeRow.id)
    if areas is not None:
        query = query.where(LevelChangeRow.area.in_(list(areas)))
    with session_scope(engine) as session:
        return [row.to_change() for row in session.scalars(query)]


def change_marker(engine: Engine) -> int:
    """A number that grows with every change, for pollers that replan on change."""
    with session_scope(engine) as session:
        return session.scalar(select(func.coalesce(func.max(LevelChangeRow.id), 0))) or 0


def set_level(
    engine: Bind,
    registry: AreaRegistry,
    ladders: Mapping[str, Ladder],
    *,
    area: str,
    level: str,
    by: str,
    reason: str,
    now: datetime,
    by_account: int | None = None,
) -> LevelChange:
    """Validate and append one decision; the level it replaces is kept with it."""
    ladder = validate_change(registry, ladders, area, level)
    if not by.strip():
        raise ValueError("--by must name the person who decided")
    if not reason.strip():
        raise ValueError("--reason must say why the level changes")
    previous = level_in_force(area, registry, ladders, latest_changes(load_changes(engine))).level
    change = LevelChange(area, level, now, by.strip(), reason.strip(), previous)
    with session_scope(engine) as session:
        session.add(
            LevelChangeRow(
                area=area,
                level=level,
                ladder=ladder.name,
                previous=previous,
                at=now,
                by=change.by,
                by_account=by_account,
                reason=change.reason,
            )
        )
    log.info(
        "level.changed",
        area=area,
        level=level,
        previous=previous,
        by=change.by,
        reason=change.reason,
        ladder=ladder.name,
    )
    return change
