"""Correct a blast: a follow-up to exactly those the first one may have reached.

A wrong text already on handsets cannot be recalled; what a district can do
is send a correction to the same people and no one else. A correction is an
ordinary blast whose `corrects` names the first: drafted by one operator and
sent only when a second approves it with `sms approve`, like any other. It is
expanded at approval, in one INSERT … SELECT from the first blast's messages
that may have reached a handset (`blast.REACHED`: sending, submitted,
delivered, expired, or cancelled after some of its parts went out), so
messages still in flight at the draft are counted.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import Connection, bindparam, text

from broadcaster.sms.blast import REACHED, BlastError, Preview, preview
from broadcaster.sms.encoding import encode_text
from broadcaster.sms.numbers import CarrierRouter
from broadcaster.sms.settings import SmsSettings
from broadcaster.sms.states import BlastState, MessageState, state_in
from broadcaster.store.db import Bind, transaction
from broadcaster.store.types import UTCDateTime

log = structlog.get_logger(__name__)


def draft_correction(
    engine: Bind,
    router: CarrierRouter,
    sms: SmsSettings,
    blast_id: int,
    *,
    body: str,
    unaccented: bool,
    by: str,
    now: datetime,
) -> Preview:
    """Store a correction of blast `blast_id` as a draft and return its preview.

    Refused while the first blast still has queued messages (cancel it first,
    or the wrong text keeps going out), when it was never sent, or when it
    reached no one.
    """
    encoded = encode_text(body, unaccented=unaccented, max_parts=sms.max_parts)
    with transaction(engine) as conn:
        first = conn.execute(
            text("SELECT * FROM sms_blasts WHERE id = :id"), {"id": blast_id}
        ).one_or_none()
        if first is None:
            raise BlastError(f"no blast {blast_id}")
        if first.state == BlastState.DRAFT:
            raise BlastError(
                f"blast {blast_id} is a draft and reached no one: cancel it and "
                "draft the right text instead"
            )
        queued = _count(conn, blast_id, f"m.{state_in((MessageState.QUEUED,))}")
        if first.state == BlastState.APPROVED and queued:
            raise BlastError(
                f"blast {blast_id} still has {queued} messages queued: cancel it first "
                f"(broadcaster sms cancel {blast_id}) so no one else gets the text being corrected"
            )
        if not _count(conn, blast_id, REACHED):
            raise BlastError(f"blast {blast_id} reached no one; there is nothing to correct")
        correction = conn.execute(
            text(
                "INSERT INTO sms_blasts (text, unaccented, encoding, parts, priority, exercise, "
                "areas, state, created_at, created_by, corrects) VALUES (:text, :unaccented, "
                ":encoding, :parts, :priority, :exercise, :areas, 'draft', :at, :by, :first) "
                "RETURNING id"
            ).bindparams(bindparam("at", type_=UTCDateTime())),
            {
                "text": body,
                "unaccented": unaccented,
                "encoding": str(encoded.encoding),
                "parts": encoded.parts,
                "priority": first.priority,
                "exercise": first.exercise,
                "areas": first.areas,
                "at": now,
                "by": by,
                "first": blast_id,
            },
        ).scalar_one()
    log.info("sms.correction_drafted", blast=correction, corrects=blast_id, by=by)
    return preview(engine, router, sms, correction)


def _count(conn: Connection, blast_id: int, condition: str) -> int:
    query = text(f"SELECT count(*) FROM sms_messages m WHERE m.blast_id = :id AND {condition}")
    return int(conn.execute(query, {"id": blast_id}).scalar_one())
