"""The schedules the daemon may run: the files, checked, as far as an approver accepted them.

Reads the files and the newest accepted set (`store.schedules`), checks the
channel floors, and hands the pure `schedule_review` plain programmes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import Engine

from broadcaster.cadence import parse_duration
from broadcaster.config import Settings
from broadcaster.occurrence import Channel, SmsText
from broadcaster.programmes import Programme
from broadcaster.schedule_files import (
    ScheduleError,
    load_programmes,
    parse_schedule,
    quiet_hours,
    schedule_dir,
)
from broadcaster.schedule_review import (
    LevelLoad,
    Review,
    effective,
    floor_problems,
    review,
    sms_load,
)
from broadcaster.sms.encoding import encode_text
from broadcaster.store import schedules as store
from broadcaster.store.db import Bind

log = structlog.get_logger(__name__)


def floors(settings: Settings) -> dict[Channel, timedelta]:
    """The shortest time allowed between two sends, per channel."""
    return {Channel.SMS: parse_duration(settings.sms.min_interval)}


def load_checked(settings: Settings) -> tuple[Programme, ...]:
    """Load the schedule files and refuse any that sends below its channel's floor."""
    programmes = load_programmes(settings)
    problems = floor_problems(programmes, floors(settings))
    if problems:
        raise ScheduleError(problems)
    return programmes


def approved_programmes(
    settings: Settings, accepted: store.ScheduleSet | None
) -> list[Programme] | None:
    """Parse an accepted set's text as if it were the files (None when there is none)."""
    if accepted is None:
        return None
    folder = schedule_dir(settings)
    registry, ladders, quiet = settings.registry(), settings.ladder_objects(), quiet_hours(settings)
    relays = settings.relay_objects()
    out: list[Programme] = []
    for name, body in sorted(accepted.files.items()):
        try:
            out += parse_schedule(folder / name, body, registry, ladders, quiet, relays)
        except ScheduleError as exc:  # areas or ladders changed since: that file's part is gone
            log.warning("schedule.accepted_set_unreadable", file=name, detail=str(exc))
    return out


def running(settings: Settings, engine: Engine) -> tuple[tuple[Programme, ...], tuple[str, ...]]:
    """The programmes the daemon runs now, and the ids awaiting `schedule approve`."""
    current = load_checked(settings)
    return effective(approved_programmes(settings, store.latest(engine)), current)


@dataclass(frozen=True)
class Pending:
    """The files as they are now, and what accepting them would change."""

    review: Review
    files: dict[str, str]
    sha256: str
    areas: tuple[str, ...]  # the areas the added or changed programmes reach


def pending(settings: Settings, bind: Bind) -> Pending:
    """Compare the files on disk with the newest accepted set."""
    files = store.read_files(schedule_dir(settings))
    current = load_checked(settings)
    accepted = approved_programmes(settings, store.latest(bind))
    recipients = store.recipients_by_commune(bind)
    found = review(accepted, current, lambda ps: load_of(settings, ps, recipients))
    touched = set(found.added + found.changed)
    areas = tuple(sorted({a for p in current if p.id in touched for a in p.areas}))
    return Pending(found, files, store.digest(files), areas)


def load_of(
    settings: Settings, programmes: Sequence[Programme], recipients: dict[str, dict[str, int]]
) -> list[LevelLoad]:
    """SMS count and cost a day per level for these programmes and subscribers."""
    parts = {}
    for p in programmes:
        if isinstance(p.content, SmsText):
            parts[p.id] = encode_text(
                p.content.text, unaccented=False, max_parts=settings.sms.max_parts
            ).parts
    prices = {name: c.price_per_part for name, c in settings.carriers.items()}
    return sms_load(programmes, settings.registry(), recipients, prices, parts)
