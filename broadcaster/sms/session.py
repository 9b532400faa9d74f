"""One bind's SMPP session: window, sequence numbers, retries, cancels; bytes in, bytes out.

Pure: no socket, no clock, no database. The sender hands it claimed
messages, bytes read and the (monotonic) time, and takes back PDUs to write
and outcomes to record. A part holds its window slot until its message's
outcome is durable (`durable(n)`), so after kill -9 at most one window of
messages can be submitted twice; if recording fails the outcomes come back
(`restore`) and are offered again, and their slots with them.

Inbound PDUs are parsed within bounds (`pdu.py`): a malformed one is
answered the way the spec says and logged once with its hex; only a stream
that cannot be re-framed raises LinkLost.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

import structlog

from broadcaster.sms.encoding import EncodedText, encode_text, short_messages
from broadcaster.sms.outcomes import Claimed, Outcomes
from broadcaster.sms.pdu import (
    HEADER,
    HEADER_SIZE,
    TLV_MESSAGE_STATE,
    TLV_RECEIPTED_MESSAGE_ID,
    CommandId,
    CommandStatus,
    FramingLost,
    MalformedPdu,
    command_name,
    deliver_sm_resp,
    frame_length,
    read_deliver_sm,
    read_message_id,
    response_pdu,
    status_name,
    submit_sm_pdu,
)
from broadcaster.sms.ratelimit import TokenBucket
from broadcaster.sms.receipts import NotAReceipt, Receipt, normalise_id, parse_receipt
from broadcaster.sms.retry import GENERIC_NACK, RetryPolicy

log = structlog.get_logger(__name__)
_REQUEST_IDS = frozenset(c for c in CommandId if not c & 0x80000000)
_UNANSWERED = frozenset({CommandId.ALERT_NOTIFICATION, CommandId.OUTBIND})
# After the SMSC's unbind, how long its answers to parts already written are awaited:
# each one read is a message not sent twice on the next bind.
UNBIND_GRACE = 2.0


@dataclass(frozen=True)
class BindConfig:
    """Where and how fast one bind talks to its SMSC, and what it does with refusals."""

    carrier: str
    host: str
    port: int
    system_id: str
    password: str
    source_addr: str
    rate: float
    window: int
    enquire_link: float = 30.0
    reconnect_base: float = 0.5
    reconnect_max: float = 30.0
    healthy_after: float = 30.0
    response_timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class LinkLost(Exception):
    """The link must be rebuilt; `farewell` is what to write before closing."""

    def __init__(self, reason: str, farewell: bytes = b""):
        super().__init__(reason)
        self.reason = reason
        self.farewell = farewell


@dataclass(eq=False)
class Outgoing:
    """A claimed message on its way: its parts, tries per part, which are answered."""

    claimed: Claimed
    pdus: tuple[tuple[int, bytes], ...]
    data_coding: int
    tries: list[int] = field(default_factory=list)
    acked: int = 0
    flying: int = 0
    done: bool = False
    cancelled: bool = False


@dataclass
class LinkState:
    """What the session knows of the current connection (the socket is the sender's)."""

    buffer: bytearray = field(default_factory=bytearray)
    last_rx: float = 0.0
    enquire_sent: float | None = None
    unbound_at: float | None = None  # the SMSC asked to unbind: nothing more is written


class Ack(NamedTuple):
    """The answer to one deliver_sm, and the SMSC id of the receipt it acknowledges
    (None when it carried no final receipt): the sender withholds the answer to a
    receipt it cannot match yet, so that receipt is not lost with its memory."""

    pdu: bytes
    smsc_id: str | None


class SmppSession:
    """Move one bind's parts between a ready queue, the SMSC and a list of outcomes."""

    def __init__(self, config: BindConfig):
        self.config = config
        self.bucket = TokenBucket.within(config.rate)
        self.window = config.window  # this node's share of it (`share`)
        self.ready: deque[tuple[Outgoing, int]] = deque()
        self.retry: deque[tuple[float, Outgoing, int]] = deque()
        self.inflight: dict[int, tuple[Outgoing, int, float]] = {}
        self.open_parts = 0  # acked parts of messages whose outcome is not yet taken
        self.undurable = 0  # parts of taken outcomes not yet committed
        self.link: LinkState | None = None
        self.answered = 0  # submit responses on the current link (progress, for the backoff)
        self._seq = 0
        self._ref = 0
        self._blasts: dict[int, EncodedText] = {}
        self._held: dict[int, set[Outgoing]] = {}  # by blast: messages not yet finished
        self._pending = Outcomes()
        self._pending_parts = 0
        self._pending_acks: list[Ack] = []

    # -- blasts -----------------------------------------------------------------------
    def add_blast(self, blast_id: int, text: str, unaccented: bool) -> None:
        """Remember a blast's encoding so its messages can be cut into parts."""
        self._blasts[blast_id] = encode_text(text, unaccented=unaccented, max_parts=255)

    def knows_blast(self, blast_id: int) -> bool:
        """Tell whether the blast's encoding is already known."""
        return blast_id in self._blasts

    @property
    def blasts_in_hand(self) -> list[int]:
        """Return the blasts with messages this session holds and has not finished."""
        return list(self._held)

    @property
    def holding(self) -> set[int]:
        """Return the ids of the messages this session holds and has not finished."""
        return {out.claimed.id for outs in self._held.values() for out in outs}

    def lose(self, message_ids: set[int]) -> int:
        """Drop held messages whose lease another sender took; return how many.

        No part of theirs is written from now on and no outcome of theirs is
        recorded: the new owner sends them. Parts already answered stay recorded
        (their receipts must find them); their window slots free at once, as
        there is no outcome of ours to wait for.
        """
        lost = 0
        for blast_id in list(self._held):
            for out in [o for o in self._held[blast_id] if o.claimed.id in message_ids]:
                out.done = True
                self.open_parts -= out.acked
                self._unhold(out)
                lost += 1
        return lost

    # -- queue state ------------------------------------------------------------------
    @property
    def held(self) -> int:
        """Return parts waiting to be sent or retried."""
        return len(self.ready) + len(self.retry)

    @property
    def idle(self) -> bool:
        """Tell whether nothing is held, in flight or unposted."""
        return not (self.ready or self.retry or self.inflight or self._pending)

    def share(self, nodes: int) -> None:
        """Take 1/nodes of the carrier's rate and window: its peers take theirs, so the
        caps hold for the sum (the window rounds down, to one part at least)."""
        self.window = max(1, self.config.window // nodes)
        self.bucket.resize(self.config.rate / nodes)

    def capacity(self) -> int:
        """Return how many more parts the window allows right now."""
        return self.window - len(self.inflight) - self.open_parts - self.undurable

    def wants_to_send(self, now: float) -> bool:
        """Tell whether fill() may write something now (the sender checks cancels first)."""
        if self.link is None or self.link.unbound_at is not None or self.capacity() <= 0:
            return False
        return bool(self.ready) or bool(self.retry and self.retry[0][0] <= now)

    def next_seq(self) -> int:
        """Return the next SMPP sequence number of this bind (1..0x7FFFFFFF)."""
        self._seq = self._seq % 0x7FFFFFFF + 1
        return self._seq

    def _next_ref(self) -> int:
        self._ref = (self._ref + 1) % 256
        return self._ref

    def queue_claimed(self, claimed: list[Claimed]) -> None:
        """Cut claimed messages into parts (sequential UDH reference) and queue them."""
        for item in claimed:
            encoded = self._blasts[item.blast_id]
            ref = self._next_ref() if encoded.parts > 1 else 0
            pdus = short_messages(encoded, ref)
            out = Outgoing(item, pdus, encoded.data_coding, [0] * len(pdus))
            self._held.setdefault(item.blast_id, set()).add(out)
            for index in range(len(pdus)):
                self.ready.append((out, index))

    def cancel_blasts(self, blast_ids: set[int]) -> int:
        """Stop the given blasts: no part of theirs is written from now on; return how
        many messages this newly stopped.

        Parts already written finish their PDU and nothing more; a message whose
        parts are all answered is cancelled at once (or submitted, if every part went).
        """
        stopped = 0
        for blast_id in blast_ids:
            for out in list(self._held.get(blast_id, ())):
                stopped += not out.cancelled
                out.cancelled = True
                if out.flying == 0:
                    self._settle_cancelled(out)
        return stopped

    def _settle_cancelled(self, out: Outgoing) -> None:
        if out.done:
            return
        self._finish(out)
        if out.acked == len(out.pdus):
            self._pending.submitted.append(out.claimed.id)
        else:
            self._pending.cancelled.append((out.claimed.id, out.acked))

    # -- sending ----------------------------------------------------------------------
    def fill(self, now: float) -> list[bytes]:
        """Build the submit_sm PDUs the window and the rate allow now."""
        wire: list[bytes] = []
        while self.capacity() > 0:
            item = self._next_part(now)
            if item is None or not self.bucket.take(now):
                if item is not None:
                    self.ready.appendleft(item)
                break
            out, index = item
            seq = self.next_seq()
            esm_class, short_message = out.pdus[index]
            wire.append(
                submit_sm_pdu(
                    seq,
                    self.config.source_addr,
                    out.claimed.msisdn,
                    esm_class,
                    out.data_coding,
                    short_message,
                )
            )
            out.tries[index] += 1
            out.flying += 1
            self.inflight[seq] = (out, index, now)
        return wire

    def _next_part(self, now: float) -> tuple[Outgoing, int] | None:
        while self.retry and self.retry[0][0] <= now:
            _, out, index = self.retry.popleft()
            if not (out.done or out.cancelled):
                return out, index
        while self.ready:
            out, index = self.ready.popleft()
            if not (out.done or out.cancelled):
                return out, index
        return None

    # -- receiving --------------------------------------------------------------------
    def on_bytes(self, data: bytes, now: float) -> list[bytes]:
        """Consume bytes from the SMSC; return PDUs to send back at once (responses).

        At most one reply per inbound PDU, each at most 17 bytes.
        """
        link = self.link
        assert link is not None
        link.buffer += data
        link.last_rx = now
        replies: list[bytes] = []
        buffer, pos = link.buffer, 0
        try:
            while len(buffer) - pos >= HEADER_SIZE:
                length = frame_length(buffer, pos)
                if len(buffer) - pos < length:
                    break
                raw = bytes(buffer[pos : pos + length])
                pos += length
                reply = self._on_pdu(raw, now)
                if reply is not None:
                    replies.append(reply)
        except FramingLost as exc:
            log.error("sms.framing_lost", carrier=self.config.carrier, error=str(exc), hex=exc.hex)
            raise LinkLost(f"framing lost: {exc}") from exc
        finally:
            del buffer[:pos]
        return replies

    def _on_pdu(self, raw: bytes, now: float) -> bytes | None:
        try:
            return self._dispatch(raw, now)
        except MalformedPdu as exc:
            log.warning(
                "sms.pdu_malformed",
                carrier=self.config.carrier,
                command=command_name(exc.command_id),
                sequence=exc.sequence,
                status=exc.status.name,
                error=exc.why,
                hex=exc.hex,
            )
            return exc.answer()

    def _dispatch(self, raw: bytes, now: float) -> bytes | None:
        _, command_id, status, seq = HEADER.unpack_from(raw)
        if command_id == CommandId.SUBMIT_SM_RESP:
            try:
                message_id = read_message_id(raw)
            except MalformedPdu:
                self._on_submit_resp(seq, status, "", now)  # the status still tells
                raise
            self._on_submit_resp(seq, status, message_id, now)
            return None
        if command_id == CommandId.DELIVER_SM:  # answered once the receipt is committed
            receipt = self._on_deliver(raw)
            smsc_id = receipt.smsc_id if receipt is not None and receipt.final else None
            self._pending_acks.append(Ack(deliver_sm_resp(seq), smsc_id))
            return None
        if command_id == CommandId.ENQUIRE_LINK:
            return response_pdu(CommandId.ENQUIRE_LINK_RESP, 0, seq)
        if command_id == CommandId.ENQUIRE_LINK_RESP:
            self.link.enquire_sent = None  # type: ignore[union-attr]
            return None
        if command_id == CommandId.UNBIND:  # answered at once; its answers still read
            log.warning(
                "sms.smsc_unbind",
                carrier=self.config.carrier,
                sequence=seq,
                inflight=len(self.inflight),
            )
            self.link.unbound_at = now  # type: ignore[union-attr]
            return response_pdu(CommandId.UNBIND_RESP, 0, seq)
        if command_id == CommandId.GENERIC_NACK:
            log.warning(
                "sms.generic_nack",
                carrier=self.config.carrier,
                sequence=seq,
                status=status_name(status),
            )
            self._on_submit_resp(seq, GENERIC_NACK, "", now, nack_status=status)
            return None
        if command_id & 0x80000000 or command_id in _UNANSWERED:  # no response exists
            log.info(
                "sms.pdu_ignored", carrier=self.config.carrier, command=command_name(command_id)
            )
            return None
        if command_id == CommandId.DATA_SM:  # receipts come as deliver_sm here
            log.warning("sms.data_sm_refused", carrier=self.config.carrier, sequence=seq)
            return response_pdu(CommandId.DATA_SM_RESP, CommandStatus.ESME_RX_P_APPN, seq, b"\0")
        if command_id in _REQUEST_IDS:  # a request only an SMSC takes: refuse it
            return response_pdu(command_id | 0x80000000, CommandStatus.ESME_RINVBNDSTS, seq)
        raise MalformedPdu(CommandStatus.ESME_RINVCMDID, command_id, seq, "unknown command", raw)

    def _on_submit_resp(
        self, seq: int, status: int | str, message_id: str, now: float, nack_status: int = 0
    ) -> None:
        entry = self.inflight.pop(seq, None)
        if entry is None:
            log.warning("sms.response_unknown", carrier=self.config.carrier, sequence=seq)
            return
        out, index, _ = entry
        out.flying -= 1
        self.answered += 1
        if status == 0:
            self.bucket.recover(now)
            out.acked += 1
            self._pending.parts.append((out.claimed.id, index + 1, normalise_id(message_id)))
            if out.done:  # its message already ended (failed): the slot frees on commit
                self.undurable += 1
                self._pending_parts += 1
                return
            self.open_parts += 1
            if out.acked == len(out.pdus):
                self._finish(out)
                self._pending.submitted.append(out.claimed.id)
        else:
            self._refused(out, index, status, now, nack_status)
        if out.cancelled and out.flying == 0:
            self._settle_cancelled(out)

    def _refused(
        self, out: Outgoing, index: int, status: int | str, now: float, nack_status: int
    ) -> None:
        name = status if isinstance(status, str) else status_name(status)
        verdict = self.config.retry.verdict(status, out.tries[index])
        if out.done or out.cancelled:
            return
        if verdict.retry:
            delay = verdict.delay
            if verdict.throttle:
                delay = max(delay, self.bucket.slow_down(now))
            self.retry.append((now + delay, out, index))
            log.info(
                "sms.submit_retry",
                carrier=self.config.carrier,
                status=name,
                attempt=out.tries[index],
                delay=round(delay, 3),
                rate=round(self.bucket.rate, 1),
            )
            return
        code = nack_status if status == GENERIC_NACK else int(status)
        reason = f"{name} (0x{code:08x}) after {out.tries[index]} submission(s)"
        self._finish(out)
        self._pending.failed.append((out.claimed.id, code, reason))
        log.warning(
            "sms.submit_failed",
            carrier=self.config.carrier,
            message=out.claimed.id,
            status=name,
            reason=reason,
        )

    def _finish(self, out: Outgoing) -> None:
        out.done = True
        self.open_parts -= out.acked
        self.undurable += out.acked
        self._pending_parts += out.acked
        self._unhold(out)

    def _unhold(self, out: Outgoing) -> None:
        held = self._held.get(out.claimed.blast_id)
        if held is not None:
            held.discard(out)
            if not held:
                del self._held[out.claimed.blast_id]

    def _on_deliver(self, raw: bytes) -> Receipt | None:
        deliver = read_deliver_sm(raw)
        receipted = deliver.tlvs.get(TLV_RECEIPTED_MESSAGE_ID)
        state = deliver.tlvs.get(TLV_MESSAGE_STATE)
        try:
            receipt = parse_receipt(
                deliver.short_message,
                receipted.split(b"\0", 1)[0].decode("ascii", "replace") if receipted else None,
                state[0] if state else None,
            )
        except NotAReceipt:
            log.info("sms.mo_ignored", carrier=self.config.carrier)
            return None
        self._pending.receipts.append(receipt)
        return receipt

    # -- outcomes ---------------------------------------------------------------------
    @property
    def pending(self) -> Outcomes:
        """Return outcomes learnt since they were last taken."""
        return self._pending

    def take_outcomes(self) -> tuple[Outcomes, int, list[Ack]]:
        """Return outcomes to record, the window slots they hold and the receipt acks
        to send once they are committed (an unacknowledged receipt is sent again)."""
        taken = self._pending, self._pending_parts, self._pending_acks
        self._pending, self._pending_parts, self._pending_acks = Outcomes(), 0, []
        return taken

    def restore(self, outcomes: Outcomes, parts: int, acks: list[Ack]) -> None:
        """Take back outcomes that could not be recorded, ahead of newer ones."""
        self._pending = outcomes.then(self._pending)
        self._pending_parts += parts
        self._pending_acks = acks + self._pending_acks

    def durable(self, parts: int) -> None:
        """Free window slots whose outcomes are now committed."""
        self.undurable -= parts

    # -- the link ---------------------------------------------------------------------
    def unbind_over(self, now: float) -> bool:
        """Tell whether an unbound link is done: every written part answered, or the
        grace spent. SMSCs answer the submits they already read after their unbind;
        dropping the link at once would send those messages a second time."""
        link = self.link
        if link is None or link.unbound_at is None:
            return False
        return not self.inflight or now - link.unbound_at >= UNBIND_GRACE

    def attach(self, now: float) -> None:
        """Start a new link (just bound)."""
        self.link = LinkState(last_rx=now)
        self.answered = 0

    def detach(self) -> None:
        """Forget the lost link: unanswered parts go back in front and will be resent.

        Receipts not yet acknowledged on the lost link will be delivered again.
        """
        self.link = None
        self._pending.receipts.clear()
        self._pending_acks.clear()
        for seq in sorted(self.inflight, reverse=True):
            out, index, _ = self.inflight[seq]
            out.flying -= 1
            if out.cancelled:
                if out.flying == 0:
                    self._settle_cancelled(out)
                continue
            self.ready.appendleft((out, index))
        self.inflight.clear()

    def release_unsent(self) -> None:
        """Give every unsent, unstarted message back to the queue (shutdown)."""
        outs = {out for out, _ in self.ready} | {out for _, out, _ in self.retry}
        for out in outs:
            if not out.done and out.acked == 0 and out.flying == 0:
                self._finish(out)
                self._pending.released.append(out.claimed.id)
        self.ready.clear()
        self.retry.clear()
