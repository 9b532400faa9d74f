"""Turn due SMS occurrences from the planner into approved blasts.

A scheduled SMS programme runs only as an approver accepted it (`schedule
approve`, see `schedule_review`), so its blast is drafted by the schedule
and approved in the name of the account that accepted the schedules, with
an audit row. Occurrences of one programme due at one instant become one
blast to all their areas, keyed by that occurrence (`sms_blasts.occurrence`,
unique): an occurrence fired again after its scheduler died mid-way finds
the blast it already made and makes no second one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog
from sqlalchemy import Engine, text

from broadcaster.accounts import Forbidden
from broadcaster.config import Settings
from broadcaster.occurrence import Occurrence, SmsText
from broadcaster.occurrence import Priority as BulletinPriority
from broadcaster.planner import for_notice
from broadcaster.programmes import Programme
from broadcaster.sms import blast as blasts
from broadcaster.sms.carriers import router_from_settings
from broadcaster.sms.states import Priority
from broadcaster.store.accounts import get_account, record_audit
from broadcaster.store.db import Bind
from broadcaster.store.schedules import latest

log = structlog.get_logger(__name__)
Key = tuple[str, str, datetime]


class SmsHandler:
    """Create and approve one blast per (programme, instant) of due SMS occurrences."""

    def __init__(self, settings: Settings, engine: Engine, clock: Callable[[], datetime]):
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.router = router_from_settings(settings)

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
        accepted = latest(self.engine)
        if accepted is None or accepted.approved_by is None:
            raise Forbidden(
                f"programme {programme!r}: no accepted schedule set approves it; "
                "run `broadcaster schedule approve`"
            )
        approver = get_account(self.engine, accepted.approved_by)
        now = self.clock()
        occurrence = f"{programme}@{group[0].at.isoformat()}"
        with self.engine.begin() as conn:
            made = conn.execute(
                text("SELECT id FROM sms_blasts WHERE occurrence = :o"), {"o": occurrence}
            ).scalar()
            if made is not None:
                log.info("sms.scheduled_blast_exists", programme=programme, blast=made)
                return
            preview = draft_for_programme(
                self.settings,
                conn,
                group,
                areas=[o.area for o in group],
                by=f"schedule:{programme}",
                now=now,
            )
            queued = blasts.approve(
                conn, self.router, self.settings.sms, preview.id, by=approver.name, now=now
            )
            conn.execute(
                text(
                    "UPDATE sms_blasts SET approved_by_account = :a, occurrence = :o WHERE id = :id"
                ),
                {"a": approver.id, "o": occurrence, "id": preview.id},
            )
            record_audit(
                conn,
                approver.id,
                "sms.approve",
                f"blast:{preview.id}",
                {"programme": programme, "schedule_set": accepted.id, "queued": queued},
                now=now,
            )
        log.info(
            "sms.scheduled_blast",
            programme=programme,
            blast=preview.id,
            queued=queued,
            approved_by=approver.id,
        )


def draft_for_programme(
    settings: Settings,
    engine: Bind,
    group: Sequence[Occurrence],
    *,
    areas: Sequence[str],
    by: str,
    now: datetime,
) -> blasts.Preview:
    """Draft the blast one SMS programme's occurrences send; emergency programmes go urgent."""
    first = group[0]
    if not isinstance(first.content, SmsText):
        raise ValueError(f"programme {first.programme!r} has no SMS text (content.text)")
    return blasts.draft(
        engine,
        settings.registry(),
        router_from_settings(settings),
        settings.sms,
        areas=list(areas),
        body=first.content.text,
        unaccented=False,
        priority=Priority.URGENT
        if first.priority == BulletinPriority.EMERGENCY
        else Priority.ROUTINE,
        by=by,
        exercise=False,
        now=now,
    )


def draft_notice_sms(
    settings: Settings,
    engine: Bind,
    programmes: Sequence[Programme],
    *,
    areas: Sequence[str],
    text: str,
    by: str,
    now: datetime,
) -> list[blasts.Preview]:
    """Draft, for one urgent notice, the SMS of every notice-triggered programme that
    covers some of the notice's areas, sent only to those areas."""
    registry = settings.registry()
    reached = {code: set(blasts.communes_of(registry, [code])) for code in areas}
    by_programme: dict[str, list[Occurrence]] = defaultdict(list)
    for occurrence in for_notice(programmes, text, now):
        by_programme[occurrence.programme].append(occurrence)
    previews = []
    for group in by_programme.values():
        covered = set(blasts.communes_of(registry, [o.area for o in group]))
        targets = [code for code in areas if reached[code] & covered]
        if targets:
            previews.append(
                draft_for_programme(settings, engine, group, areas=targets, by=by, now=now)
            )
    return previews
