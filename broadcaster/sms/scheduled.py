"""Turn due SMS occurrences from the planner into approved blasts.

A scheduled programme was reviewed when its schedule file was written, so
its blast is drafted by the schedule and approved by the daemon (two
distinct names); the dispatch table already guarantees each occurrence
fires once. Occurrences of one programme due at one instant become one
blast to all their areas.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog
from sqlalchemy import Engine

from broadcaster.config import Settings
from broadcaster.planner import Occurrence
from broadcaster.programmes import Priority as BulletinPriority
from broadcaster.sms import blast as blasts
from broadcaster.sms.numbers import build_router
from broadcaster.sms.states import Priority

log = structlog.get_logger(__name__)
Key = tuple[str, str, datetime]


class SmsHandler:
    """Create and approve one blast per (programme, instant) of due SMS occurrences."""

    def __init__(self, settings: Settings, engine: Engine, clock: Callable[[], datetime]):
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.registry = settings.registry()
        self.router = build_router(
            {name: c.prefixes for name, c in settings.carriers.items()}, settings.sms.overrides
        )

    def __call__(self, occurrences: Sequence[Occurrence]) -> dict[Key, str]:
        groups: dict[tuple[str, datetime], list[Occurrence]] = defaultdict(list)
        for occurrence in occurrences:
            groups[(occurrence.programme, occurrence.at)].append(occurrence)
        failures: dict[Key, str] = {}
        for (programme, _), group in groups.items():
            try:
                self._blast(programme, group)
            except Exception as exc:  # noqa: BLE001 - recorded on every occurrence's row
                failures.update({o.key: str(exc) or type(exc).__name__ for o in group})
        return failures

    def _blast(self, programme: str, group: list[Occurrence]) -> None:
        first = group[0]
        if not first.content.text:
            raise ValueError(f"programme {programme!r} has no SMS text (content.text)")
        urgent = first.priority == BulletinPriority.EMERGENCY
        now = self.clock()
        preview = blasts.draft(
            self.engine,
            self.registry,
            self.router,
            self.settings.sms,
            areas=[o.area for o in group],
            body=first.content.text,
            unaccented=False,
            priority=Priority.URGENT if urgent else Priority.ROUTINE,
            by=f"schedule:{programme}",
            exercise=False,
            now=now,
        )
        queued = blasts.approve(
            self.engine, self.router, self.settings.sms, preview.id, by="daemon", now=now
        )
        log.info("sms.scheduled_blast", programme=programme, blast=preview.id, queued=queued)
