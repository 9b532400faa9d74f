"""The database side of one carrier's sender: claim with a lease, record outcomes.

Claims carry a lease so a crashed sender's messages return to the queue; on
PostgreSQL `FOR UPDATE SKIP LOCKED` lets several daemons share a carrier.
Outcomes are written in batches, each batch one transaction, and every
update names the state it expects so a late or repeated outcome changes
nothing it should not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from broadcaster.sms.outcomes import Claimed, Outcomes
from broadcaster.sms.receipts import Receipt, id_readings
from broadcaster.sms.states import MessageState, moving_to
from broadcaster.store.types import UTCDateTime

log = structlog.get_logger(__name__)


class StoreUnavailable(Exception):
    """The database refused a sender's write or read (locked, unreachable): try again."""


_TS = UTCDateTime()
QUEUED, SENDING, SUBMITTED = MessageState.QUEUED, MessageState.SENDING, MessageState.SUBMITTED
DELIVERED, FAILED, EXPIRED = MessageState.DELIVERED, MessageState.FAILED, MessageState.EXPIRED
CANCELLED = MessageState.CANCELLED
SENDER_BUSY_TIMEOUT_MS = 2000  # SQLite: a locked database fails fast; the sender retries
_CANCELLED_BLASTS = "SELECT id FROM sms_blasts WHERE state = 'cancelled'"


# A lapsed lease of a cancelled blast's message is not requeued: its sender stopped
# before it could say whether the message went out, and nothing more may.
_CANCEL_EXPIRED = (
    "UPDATE sms_messages SET state = 'cancelled', final_at = ?, lease_owner = NULL, "
    "lease_until = NULL, reason = 'blast cancelled; its sender stopped before submitting' "
    f"WHERE carrier = ? AND {moving_to(CANCELLED)} AND lease_until < ? "
    f"AND blast_id IN ({_CANCELLED_BLASTS})"
)
_RELEASE_EXPIRED = (
    "UPDATE sms_messages SET state = 'queued', lease_owner = NULL, lease_until = NULL "
    f"WHERE carrier = ? AND {moving_to(QUEUED)} AND lease_until < ?"
)
_CLAIM = (
    "UPDATE sms_messages SET state = 'sending', sending_at = ?, lease_owner = ?, "
    "lease_until = ?, attempts = attempts + 1 WHERE id IN ("
    f" SELECT id FROM sms_messages WHERE carrier = ? AND {moving_to(SENDING)}"
    f" AND rank <= ? AND blast_id NOT IN ({_CANCELLED_BLASTS})"
    " ORDER BY rank, id LIMIT ?{lock}) "
    "RETURNING id, blast_id, msisdn, rank"
)

# The hot path (claims, and one transaction per sender turn) runs through the DBAPI
# on a connection the sender keeps: SQLAlchemy's per-statement work and a pool checkout
# per turn were a third of the sender's time at 4,000 msg/s. `?` becomes `%s` for
# psycopg; timestamps are converted once per batch by the column type's processor.
_INSERT_PART = (
    "INSERT INTO sms_parts (message_id, seq, carrier, smsc_id, submitted_at) VALUES (?, ?, ?, ?, ?)"
)
# An outcome never lands on a row another sender now leases (ours lapsed and was taken):
# that sender owns the message's fate. A submitted message has no owner; a receipt may
# fail it, or fail one of ours still `sending`.
_SUBMITTED = (
    "UPDATE sms_messages SET state = 'submitted', submitted_at = ?, lease_owner = NULL, "
    f"lease_until = NULL WHERE id = ? AND {moving_to(SUBMITTED)} AND lease_owner = ?"
)
_FAILED = (
    "UPDATE sms_messages SET state = 'failed', final_at = ?, status = ?, reason = ?, "
    f"lease_owner = NULL, lease_until = NULL WHERE id = ? AND {moving_to(FAILED)} "
    "AND (lease_owner IS NULL OR lease_owner = ?)"
)
_RELEASED = (
    "UPDATE sms_messages SET state = 'queued', lease_owner = NULL, lease_until = NULL "
    f"WHERE id = ? AND {moving_to(QUEUED)} AND lease_owner = ? "
    f"AND blast_id NOT IN ({_CANCELLED_BLASTS})"
)
_CANCELLED = (
    "UPDATE sms_messages SET state = 'cancelled', final_at = ?, reason = ?, "
    f"lease_owner = NULL, lease_until = NULL WHERE id = ? AND {moving_to(CANCELLED)} "
    "AND lease_owner = ?"
)
_ARE_CANCELLED = "SELECT id FROM sms_blasts WHERE state = 'cancelled' AND id IN ({marks})"
_DELIVERED_WHEN_COMPLETE = (
    "UPDATE sms_messages SET state = 'delivered', final_at = ? WHERE id = ? "
    f"AND {moving_to(DELIVERED)} AND (SELECT count(DISTINCT p.seq) FROM sms_parts p "
    " WHERE p.message_id = sms_messages.id AND p.stat = 'DELIVRD') >= "
    "(SELECT b.parts FROM sms_blasts b WHERE b.id = sms_messages.blast_id)"
)
_FIND_PART = (
    "SELECT p.id, p.message_id, p.smsc_id, m.state FROM sms_parts p "
    "JOIN sms_messages m ON m.id = p.message_id WHERE p.carrier = ? "
    "AND p.receipt_at IS NULL AND p.smsc_id IN ({marks})"
)
_MARK_PART = "UPDATE sms_parts SET stat = ?, receipt_at = ? WHERE id = ?"
FIND_CHUNK = 500

# PostgreSQL: a sender's transaction first locks its carrier's counter rows, in key
# order. Each statement's trigger upserts them in key order, but a transaction of
# several statements (submitted, then delivered) took them in varying order, and
# senders on several nodes deadlocked on them (measured: one 1 s deadlock timeout
# every few seconds per node with three nodes on one carrier).
_LOCK_COUNTERS = "SELECT n FROM sms_counters WHERE carrier = %s ORDER BY state FOR UPDATE"
# Only rows that exist can be locked: a state's row first inserted by a trigger mid-run
# (the first `delivered`) was locked by one sender before the others' ordered locks,
# and three nodes still deadlocked now and then (seen in CI). So every state's row is
# made, at 0, before a sender's first counted transaction.
_MAKE_COUNTERS = (
    "INSERT INTO sms_counters (carrier, state, n) SELECT %s, state, 0 "
    "FROM unnest(%s::text[]) AS state ON CONFLICT DO NOTHING"
)

_RENEW = (
    "UPDATE sms_messages SET lease_until = ? WHERE lease_owner = ? AND state = 'sending' "
    "RETURNING id"
)
_EXPIRE = (
    "UPDATE sms_messages SET state = 'expired', final_at = ?, "
    "reason = 'no final delivery receipt within the validity period' "
    f"WHERE carrier = ? AND {moving_to(EXPIRED)} AND submitted_at < ?"
)


class Outbox:
    """One carrier's queue in the database, as seen by one sender (the owner)."""

    def __init__(self, engine: Engine, carrier: str, owner: str):
        self.engine = engine
        self.carrier = carrier
        self.owner = owner
        lock = " FOR UPDATE SKIP LOCKED" if engine.dialect.name == "postgresql" else ""
        self._qmark = engine.dialect.paramstyle == "qmark"
        self._sqlite_file = engine.dialect.name == "sqlite" and engine.url.database not in (
            None,
            "",
            ":memory:",
        )
        self._sql = {
            q: self._native(q)
            for q in (
                _CANCEL_EXPIRED,
                _RELEASE_EXPIRED,
                _INSERT_PART,
                _SUBMITTED,
                _FAILED,
                _RELEASED,
                _CANCELLED,
                _DELIVERED_WHEN_COMPLETE,
                _MARK_PART,
                _RENEW,
                _EXPIRE,
            )
        }
        dbapi = getattr(engine.dialect, "loaded_dbapi", None) or engine.dialect.dbapi
        # the driver's own errors: what raw DBAPI work raises when the store refuses
        self.db_errors: tuple[type[BaseException], ...] = (
            (dbapi.Error,) if dbapi is not None else ()
        )
        self._claim = self._native(_CLAIM.format(lock=lock))
        self._to_db = _TS.bind_processor(engine.dialect)
        self._raw: Any = None  # the DBAPI connection record() keeps (sender thread only)
        self._counters_made = False  # this carrier's counter row of every state exists
        # Messages with a part receipt recorded before the message itself was: only
        # these need the completeness check when their submission is recorded.
        self._early: set[int] = set()

    def _native(self, query: str) -> str:
        """Return query in the driver's own placeholder style."""
        return query if self._qmark else query.replace("?", "%s")

    def _at(self, now: datetime) -> object:
        """Return now as the driver wants it for a UTCDateTime column."""
        return self._to_db(now) if self._to_db is not None else now

    def claim(
        self, now: datetime, limit: int, lease: timedelta, routine_allowed: bool
    ) -> list[Claimed]:
        """Take up to limit queued messages, urgent first, under a lease."""
        at, until = self._at(now), self._at(now + lease)
        with self._cursor(counted=True) as cursor:
            cursor.execute(self._sql[_CANCEL_EXPIRED], (at, self.carrier, at))
            cursor.execute(self._sql[_RELEASE_EXPIRED], (self.carrier, at))
            cursor.execute(
                self._claim,
                (at, self.owner, until, self.carrier, int(routine_allowed), limit),
            )
            rows = cursor.fetchall()
        claimed = sorted((Claimed(*row) for row in rows), key=lambda c: (c.rank, c.id))
        if claimed:
            log.debug("sms.claimed", carrier=self.carrier, count=len(claimed))
        return claimed

    def blasts(self, blast_ids: set[int]) -> dict[int, tuple[str, bool]]:
        """Return text and unaccented flag of the given blasts."""
        if not blast_ids:
            return {}
        marks = ", ".join("?" * len(blast_ids))
        query = self._native(f"SELECT id, text, unaccented FROM sms_blasts WHERE id IN ({marks})")
        with self._cursor() as cursor:
            cursor.execute(query, sorted(blast_ids))
            rows = cursor.fetchall()
        return {r[0]: (r[1], bool(r[2])) for r in rows}

    def cancelled(self, blast_ids: list[int]) -> set[int]:
        """Return which of the given blasts are cancelled (a primary-key lookup per turn)."""
        if not blast_ids:
            return set()
        query = self._native(_ARE_CANCELLED.format(marks=", ".join("?" * len(blast_ids))))
        with self._cursor() as cursor:
            cursor.execute(query, blast_ids)
            return {row[0] for row in cursor.fetchall()}

    def record(self, outcomes: Outcomes, now: datetime) -> list[Receipt]:
        """Write a batch of outcomes in one transaction; return receipts matching no part.

        A receipt can overtake its submit_sm_resp on the wire, so the caller
        offers unmatched receipts again for a while before giving up on them.
        """
        at = self._at(now)
        with self._cursor(counted=True) as cursor:
            self._write(cursor, outcomes, at)
            touched, unmatched = self._apply_receipts(cursor, outcomes.receipts, at)
            submitted = set(outcomes.submitted)
            touched |= submitted & self._early
            self._early -= submitted
            if touched:
                cursor.executemany(
                    self._sql[_DELIVERED_WHEN_COMPLETE], [(at, m) for m in sorted(touched)]
                )
        return unmatched

    def _write(self, cursor: Any, outcomes: Outcomes, at: object) -> None:
        sql, carrier = self._sql, self.carrier
        if outcomes.parts:
            cursor.executemany(
                sql[_INSERT_PART], [(m, seq, carrier, sid, at) for m, seq, sid in outcomes.parts]
            )
        if outcomes.submitted:
            cursor.executemany(sql[_SUBMITTED], [(at, m, self.owner) for m in outcomes.submitted])
        if outcomes.failed:
            cursor.executemany(
                sql[_FAILED],
                [(at, status, reason, m, self.owner) for m, status, reason in outcomes.failed],
            )
        if outcomes.released:
            cursor.executemany(sql[_RELEASED], [(m, self.owner) for m in outcomes.released])
            reason = "blast cancelled before submission"
            cursor.executemany(
                sql[_CANCELLED], [(at, reason, m, self.owner) for m in outcomes.released]
            )
        if outcomes.cancelled:
            cursor.executemany(
                sql[_CANCELLED],
                [
                    (at, f"blast cancelled; {sent} part(s) had gone out", m, self.owner)
                    if sent
                    else (at, "blast cancelled before submission", m, self.owner)
                    for m, sent in outcomes.cancelled
                ],
            )

    @contextmanager
    def _cursor(self, counted: bool = False) -> Iterator[Any]:
        """Run the block as one transaction on the kept connection; on error drop it.

        A database error (locked, unreachable) becomes StoreUnavailable: the sender
        keeps what it was writing and tries again. `counted`: the block moves
        messages between states, so on PostgreSQL it locks the counters first.
        """
        try:
            if self._raw is None:
                self._raw = self.engine.raw_connection()
                if self.engine.dialect.name == "sqlite":
                    pragma = self._raw.cursor()
                    pragma.execute(f"PRAGMA busy_timeout={SENDER_BUSY_TIMEOUT_MS}")
                    pragma.close()
            raw = self._raw
            cursor = raw.cursor()
            try:
                if counted and self.engine.dialect.name == "postgresql":
                    if not self._counters_made:
                        cursor.execute(
                            _MAKE_COUNTERS, (self.carrier, [s.value for s in MessageState])
                        )
                        raw.commit()
                        self._counters_made = True
                    cursor.execute(_LOCK_COUNTERS, (self.carrier,))
                yield cursor
            finally:
                cursor.close()
            raw.commit()
        except BaseException as exc:
            broken = isinstance(exc, (DBAPIError, *self.db_errors))
            self.close(discard=broken)
            if broken:
                raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
            raise

    def close(self, discard: bool = False) -> None:
        """Let go of the connection the sender keeps (rolled back).

        A connection that failed, or a SQLite one (it carries the sender's short
        busy timeout), is discarded rather than handed to the pool's other users.
        """
        raw, self._raw = self._raw, None
        if raw is None:
            return
        with suppress(Exception):  # a connection already broken goes as it can
            if discard or self._sqlite_file:
                raw.invalidate()
            else:
                raw.close()

    def _apply_receipts(
        self, cursor: Any, receipts: list[Receipt], at: object
    ) -> tuple[set[int], list[Receipt]]:
        """Mark the parts final receipts name and fail undelivered messages; return the
        messages a DELIVRD touched and the receipts that matched no part."""
        touched: set[int] = set()
        final = [r for r in receipts if r.final]
        rows, unmatched = self._match(cursor, final)
        marks: list[tuple[object, ...]] = []
        failed: list[tuple[object, ...]] = []
        for receipt in final:
            row = rows.get(id(receipt))
            if row is None:
                continue
            part_id, message_id, _, state = row
            marks.append((receipt.stat, at, part_id))
            if receipt.delivered:
                touched.add(message_id)
                if state == "sending":
                    self._early.add(message_id)
            else:
                reason = f"receipt stat:{receipt.stat} err:{receipt.err}"
                failed.append((at, None, reason, message_id, self.owner))
        if marks:
            cursor.executemany(self._sql[_MARK_PART], marks)
        if failed:
            cursor.executemany(self._sql[_FAILED], failed)
        return touched, unmatched

    def _match(
        self, cursor: Any, final: list[Receipt]
    ) -> tuple[dict[int, tuple[Any, ...]], list[Receipt]]:
        """Find each receipt's part: by its id as given, then, for the few left, by the
        id's other readings (hex for decimal and back); return rows by id(receipt)."""
        rows: dict[int, tuple[Any, ...]] = {}
        used: set[int] = set()
        left = final
        for readings in (lambda r: (r.smsc_id,), lambda r: id_readings(r.smsc_id)[1:]):
            wanted = {r.smsc_id: readings(r) for r in left}
            by_id = self._find_parts(cursor, sorted({i for ids in wanted.values() for i in ids}))
            missing: list[Receipt] = []
            for receipt in left:
                candidates = (r for i in wanted[receipt.smsc_id] for r in by_id.get(i, ()))
                row = next((r for r in candidates if r[0] not in used), None)
                if row is None:
                    missing.append(receipt)
                else:
                    used.add(row[0])
                    rows[id(receipt)] = row
            left = missing
        return rows, left

    def _find_parts(self, cursor: Any, wanted: list[str]) -> dict[str, list[tuple[Any, ...]]]:
        by_id: dict[str, list[tuple[Any, ...]]] = {}
        for start in range(0, len(wanted), FIND_CHUNK):  # nothing wanted: no query
            chunk = wanted[start : start + FIND_CHUNK]
            marks = ", ".join("?" * len(chunk))
            query = _FIND_PART.format(marks=marks)
            cursor.execute(self._native(query), [self.carrier, *chunk])
            for found in cursor.fetchall():
                by_id.setdefault(found[2], []).append(tuple(found))
        return by_id

    def renew(self, now: datetime, lease: timedelta) -> set[int]:
        """Extend the lease on every message this sender still holds; return their ids.

        A message missing from the answer was taken by another sender after our
        lease lapsed (this one starved or stalled): it is no longer ours to send.
        """
        with self._cursor() as cursor:
            cursor.execute(self._sql[_RENEW], (self._at(now + lease), self.owner))
            return {row[0] for row in cursor.fetchall()}

    def expire_overdue(self, now: datetime, validity: timedelta) -> int:
        """Mark submitted messages with no final receipt by the deadline as expired."""
        with self._cursor(counted=True) as cursor:
            cursor.execute(
                self._sql[_EXPIRE], (self._at(now), self.carrier, self._at(now - validity))
            )
            count = cursor.rowcount
        if count:
            log.info("sms.expired", carrier=self.carrier, count=count)
        return count

    def backlog(self, routine_allowed: bool) -> tuple[int, int]:
        """Return (messages still to send, messages awaiting a receipt) for this carrier."""
        query = self._native(
            "SELECT state, count(*) FROM sms_messages WHERE carrier = ? "
            "AND state IN ('queued', 'sending', 'submitted') "
            "AND (rank <= ? OR state <> 'queued') GROUP BY state"
        )
        with self._cursor() as cursor:
            cursor.execute(query, (self.carrier, 1 if routine_allowed else 0))
            counts = dict(cursor.fetchall())
        return counts.get("queued", 0) + counts.get("sending", 0), counts.get("submitted", 0)
