"""Draft, approve, cancel and count SMS blasts; expansion is one INSERT … SELECT.

Approval expands the blast to one message row per recipient in set-based SQL;
the unique key (blast, msisdn) makes a repeated expansion add nothing. A
correction (`sms/correction.py`) expands from the messages of the blast it
corrects instead of from the subscribers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import Connection, Engine, bindparam, text

from broadcaster.areas import AreaRegistry
from broadcaster.sms.encoding import encode_text, ucs2_chars
from broadcaster.sms.numbers import CarrierRouter, normalise_msisdn
from broadcaster.sms.settings import SmsSettings
from broadcaster.sms.states import (
    MAY_HAVE_REACHED,
    BlastState,
    MessageState,
    Priority,
    moving_to,
    state_in,
)
from broadcaster.store.db import Bind, transaction
from broadcaster.store.read import Reader, blast_status
from broadcaster.store.types import UTCDateTime

log = structlog.get_logger(__name__)
_TS = UTCDateTime()
# A message `m` of a blast that may be on a handset: in one of MAY_HAVE_REACHED, or cancelled
# after some of its parts had gone out (the cancel stops a long message between parts).
REACHED = (
    f"(m.{state_in(MAY_HAVE_REACHED)} OR (m.state = 'cancelled' AND EXISTS "
    "(SELECT 1 FROM sms_parts p WHERE p.message_id = m.id)))"
)


class BlastError(ValueError):
    """A blast operation that is not allowed, with the reason."""


@dataclass(frozen=True)
class Preview:
    """What a blast will cost before anyone approves it."""

    id: int
    exercise: bool
    recipients: int
    encoding: str
    parts: int
    per_carrier: dict[str, int]
    ucs2_chars: tuple[str, ...] = ()
    corrects: int | None = None

    @property
    def total_sms(self) -> int:
        """Return the number of SMS parts the blast sends."""
        return self.recipients * self.parts

    def as_json(self) -> dict[str, object]:
        """Return the preview with the keys the CLI promises."""
        return {
            "id": self.id,
            "exercise": self.exercise,
            "recipients": self.recipients,
            "encoding": self.encoding,
            "parts": self.parts,
            "total_sms": self.total_sms,
            "per_carrier": self.per_carrier,
            "ucs2_chars": list(self.ucs2_chars),
            "corrects": self.corrects,
        }


def communes_of(registry: AreaRegistry, areas: Sequence[str]) -> list[str]:
    """Return the commune codes under the given areas (unknown codes raise)."""
    codes: dict[str, None] = {}
    for code in areas:
        for commune in registry.communes_under(code):
            codes[commune.code] = None
    return list(codes)


def draft(
    engine: Bind,
    registry: AreaRegistry,
    router: CarrierRouter,
    sms: SmsSettings,
    *,
    areas: Sequence[str],
    body: str,
    unaccented: bool,
    priority: Priority,
    by: str,
    exercise: bool,
    now: datetime,
) -> Preview:
    """Store a draft blast and return its preview; nothing is queued yet."""
    if not areas:
        raise BlastError("name at least one area (--area CODE)")
    communes = communes_of(registry, areas)
    encoded = encode_text(body, unaccented=unaccented, max_parts=sms.max_parts)
    if exercise:
        _test_numbers(sms, router)
    with transaction(engine) as conn:
        blast_id = conn.execute(
            text(
                "INSERT INTO sms_blasts (text, unaccented, encoding, parts, priority, exercise, "
                "areas, state, created_at, created_by) VALUES (:text, :unaccented, :encoding, "
                ":parts, :priority, :exercise, :areas, 'draft', :at, :by) RETURNING id"
            ).bindparams(bindparam("at", type_=_TS)),
            {
                "text": body,
                "unaccented": unaccented,
                "encoding": str(encoded.encoding),
                "parts": encoded.parts,
                "priority": str(priority),
                "exercise": exercise,
                "areas": json.dumps({"areas": list(areas), "communes": communes}),
                "at": now,
                "by": by,
            },
        ).scalar_one()
    log.info("sms.blast_drafted", blast=blast_id, by=by, exercise=exercise, areas=list(areas))
    return preview(engine, router, sms, blast_id)


def preview(engine: Bind, router: CarrierRouter, sms: SmsSettings, blast_id: int) -> Preview:
    """Count the recipients a blast reaches, per carrier."""
    blast = _load(engine, blast_id)
    if blast.corrects is not None:
        query = text(
            f"SELECT m.carrier, count(*) AS n FROM sms_messages m WHERE m.blast_id = :first "
            f"AND {REACHED} GROUP BY m.carrier ORDER BY m.carrier"
        )
        with transaction(engine) as conn:
            per_carrier = {r.carrier: r.n for r in conn.execute(query, {"first": blast.corrects})}
    elif blast.exercise:
        per_carrier = {}
        for _, carrier in _test_numbers(sms, router):
            per_carrier[carrier] = per_carrier.get(carrier, 0) + 1
    else:
        communes = json.loads(blast.areas)["communes"]
        query = text(
            "SELECT carrier, count(*) AS n FROM subscribers WHERE commune IN :communes "
            "GROUP BY carrier ORDER BY carrier"
        ).bindparams(bindparam("communes", expanding=True))
        with transaction(engine) as conn:
            per_carrier = {r.carrier: r.n for r in conn.execute(query, {"communes": communes})}
    return Preview(
        blast_id,
        bool(blast.exercise),
        sum(per_carrier.values()),
        blast.encoding,
        blast.parts,
        per_carrier,
        ucs2_chars(blast.text, unaccented=bool(blast.unaccented)),
        blast.corrects,
    )


def approve(
    engine: Bind,
    router: CarrierRouter,
    sms: SmsSettings,
    blast_id: int,
    *,
    by: str,
    now: datetime,
) -> int:
    """Approve a draft and queue one message per recipient; return how many were queued.

    Who may approve (a second account, in its areas) is decided by
    `broadcaster.operations.approve_blast`, which calls this in its transaction.
    """
    with transaction(engine) as conn:
        blast = conn.execute(
            text("SELECT * FROM sms_blasts WHERE id = :id"), {"id": blast_id}
        ).one_or_none()
        if blast is None:
            raise BlastError(f"no blast {blast_id}")
        if blast.state != BlastState.DRAFT:
            raise BlastError(f"blast {blast_id} is {blast.state}, only a draft can be approved")
        conn.execute(
            text(
                "UPDATE sms_blasts SET state = 'approved', approved_at = :at, approved_by = :by "
                "WHERE id = :id AND state = 'draft'"
            ).bindparams(bindparam("at", type_=_TS)),
            {"at": now, "by": by, "id": blast_id},
        )
        queued = expand(conn, sms, router, blast_id, now=now)
    log.info(
        "sms.blast_approved", blast=blast_id, by=by, queued=queued, exercise=bool(blast.exercise)
    )
    return int(queued)


def expand(
    conn: Connection, sms: SmsSettings, router: CarrierRouter, blast_id: int, *, now: datetime
) -> int:
    """Queue one message per recipient in one INSERT … SELECT; return how many it added.

    Repeating adds nothing. The blast row is locked first, so two expansions of
    one blast take turns; the first into a blast with no messages inserts them
    plainly, without ON CONFLICT, whose speculative insertion (a check of the
    unique index and one more WAL record per row) was a sixth of the time of a
    million-row expansion on PostgreSQL. Rows go in msisdn order so that the
    unique (blast, msisdn) index grows at its right edge instead of everywhere.
    """
    blast = _load_on(conn, blast_id, lock=True)
    fresh = (
        conn.execute(
            text("SELECT 1 FROM sms_messages WHERE blast_id = :b LIMIT 1"), {"b": blast_id}
        ).first()
        is None
    )
    skip_present = "" if fresh else " ON CONFLICT (blast_id, msisdn) DO NOTHING"
    rank = Priority(blast.priority).rank
    at = bindparam("at", type_=_TS)
    columns = (
        "INSERT INTO sms_messages (blast_id, msisdn, carrier, rank, state, queued_at, attempts) "
    )
    if blast.corrects is not None:  # exactly those the corrected blast may have reached
        return conn.execute(
            text(
                f"{columns}SELECT :b, m.msisdn, m.carrier, :rank, 'queued', :at, 0 "
                f"FROM sms_messages m WHERE m.blast_id = :first AND {REACHED} "
                f"ORDER BY m.msisdn{skip_present}"
            ).bindparams(at),
            {"b": blast_id, "rank": rank, "at": now, "first": blast.corrects},
        ).rowcount
    if blast.exercise:
        rows = [
            {"b": blast_id, "msisdn": m, "carrier": c, "rank": rank, "at": now}
            for m, c in _test_numbers(sms, router)
        ]
        return conn.execute(  # a few numbers, perhaps one twice: always ON CONFLICT
            text(
                f"{columns}VALUES (:b, :msisdn, :carrier, :rank, 'queued', :at, 0) "
                "ON CONFLICT (blast_id, msisdn) DO NOTHING"
            ).bindparams(at),
            rows,
        ).rowcount
    return conn.execute(
        text(
            f"{columns}SELECT :b, msisdn, carrier, :rank, 'queued', :at, 0 "
            f"FROM subscribers WHERE commune IN :communes ORDER BY msisdn{skip_present}"
        ).bindparams(at, bindparam("communes", expanding=True)),
        {"b": blast_id, "rank": rank, "at": now, "communes": json.loads(blast.areas)["communes"]},
    ).rowcount


def cancel(engine: Bind, blast_id: int, *, by: str, now: datetime) -> int:
    """Cancel a blast: nothing not yet submitted goes out; return messages cancelled here.

    Messages no live sender holds are cancelled in this transaction; each sender
    checks the blasts in its hand before every write, so it submits nothing of
    this blast once the commit is visible, and cancels what it held itself.
    """
    at = bindparam("at", type_=_TS)
    with transaction(engine) as conn:
        blast = _load_on(conn, blast_id)
        if blast.state == BlastState.CANCELLED:
            raise BlastError(f"blast {blast_id} is already cancelled")
        conn.execute(
            text(
                "UPDATE sms_blasts SET state = 'cancelled', cancelled_at = :at, "
                "cancelled_by = :by WHERE id = :id"
            ).bindparams(at),
            {"at": now, "by": by, "id": blast_id},
        )
        result = conn.execute(
            text(
                "UPDATE sms_messages SET state = 'cancelled', final_at = :at, "
                f"reason = :reason WHERE blast_id = :id AND {moving_to(MessageState.CANCELLED)} "
                "AND (lease_owner IS NULL OR lease_until < :at)"
            ).bindparams(at),
            {"at": now, "id": blast_id, "reason": f"blast cancelled by {by}"},
        )
    log.info("sms.blast_cancelled", blast=blast_id, by=by, cancelled=result.rowcount)
    return result.rowcount


def status(engine: Engine, blast_id: int) -> dict[str, object]:
    """Count a blast's messages by state (see `store.read.blast_status`)."""
    with Reader.of(engine) as reader:
        return blast_status(reader, blast_id)


def _test_numbers(sms: SmsSettings, router: CarrierRouter) -> list[tuple[str, str]]:
    out = []
    for raw in sms.test_numbers:
        msisdn = normalise_msisdn(raw)
        carrier = router.route(msisdn)
        if carrier is None:
            raise BlastError(f"sms.test_numbers: {raw!r} matches no carrier prefix")
        out.append((msisdn, carrier))
    if not out:
        raise BlastError("exercise blasts need sms.test_numbers in the config; there are none")
    return out


def _load(engine: Bind, blast_id: int):  # type: ignore[no-untyped-def]
    with transaction(engine) as conn:
        return _load_on(conn, blast_id)


def _load_on(conn, blast_id: int, *, lock: bool = False):  # type: ignore[no-untyped-def]
    # SQLite has no FOR UPDATE; callers write the blast row first (approve), and the
    # unique key refuses a racing second expansion there rather than doubling it.
    lock_clause = " FOR UPDATE" if lock and conn.dialect.name == "postgresql" else ""
    row = conn.execute(
        text(f"SELECT * FROM sms_blasts WHERE id = :id{lock_clause}"), {"id": blast_id}
    )
    blast = row.one_or_none()
    if blast is None:
        raise BlastError(f"no blast {blast_id}")
    return blast
