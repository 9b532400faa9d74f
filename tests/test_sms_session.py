"""The SMPP session with bytes alone: answers to malformed input, retries, cancels, backoff."""

from __future__ import annotations

import contextlib

import pytest
import smpplib.smpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from broadcaster.sms.link import Backoff
from broadcaster.sms.outcomes import Claimed
from broadcaster.sms.pdu import (
    HEADER,
    CommandId,
    CommandStatus,
    MalformedPdu,
    read_deliver_sm,
    read_message_id,
)
from broadcaster.sms.retry import GENERIC_NACK, RetryPolicy, Verdict, status_key
from broadcaster.sms.session import UNBIND_GRACE, BindConfig, LinkLost, SmppSession
from broadcaster.sms.settings import SmsSettings


def session(window: int = 10, rate: float = 1000.0) -> SmppSession:
    config = BindConfig("viettel", "127.0.0.1", 1, "v", "p", "DINHHOA", rate, window)
    s = SmppSession(config)
    s.attach(0.0)
    return s


def header(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return HEADER.pack(16 + len(body), command_id, status, sequence) + body


def answer(raw: bytes) -> tuple[int, int, int]:
    _, command_id, status, sequence = HEADER.unpack_from(raw)
    return command_id, status, sequence


def receipt(sequence: int = 9, smsc_id: str = "1a2b3") -> bytes:
    pdu = smpplib.smpp.make_pdu(
        "deliver_sm",
        sequence=sequence,
        source_addr="84961234567",
        destination_addr="DINHHOA",
        esm_class=4,
        short_message=f"id:{smsc_id} stat:DELIVRD".encode(),
        receipted_message_id=smsc_id,
        message_state=2,
    )
    pdu.sequence = sequence
    return pdu.generate()


def test_unknown_command_gets_generic_nack_with_invalid_command_id():
    (reply,) = session().on_bytes(header(0x00001234, 77), 1.0)
    assert answer(reply) == (CommandId.GENERIC_NACK, CommandStatus.ESME_RINVCMDID, 77)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"\0\1\1" + b"8496" * 3, CommandStatus.ESME_RINVCMDLEN),  # source_addr never ends
        (b"\0\1\1" + b"8" * 30 + b"\0", CommandStatus.ESME_RINVSRCADR),  # longer than 20
        (b"\0\1\1849\0\5\0DINH\0\4\0\0\0\0\1\0\0\0\200hi", CommandStatus.ESME_RINVMSGLEN),
        (b"\0\1\1849\0\5\0DINH\0\4\0\0\0\0\1\0\0\0\2hi\x00\x1e\x00\x09ab", 0xC2),
    ],
)
def test_malformed_deliver_sm_is_answered_with_the_spec_status_not_a_dropped_link(body, status):
    s = session()
    (reply,) = s.on_bytes(header(CommandId.DELIVER_SM, 5, body), 1.0)
    assert answer(reply) == (CommandId.DELIVER_SM_RESP, status, 5)
    assert s.link is not None and not s.pending.receipts


def test_responses_and_generic_nacks_are_never_answered():
    s = session()
    assert s.on_bytes(header(CommandId.GENERIC_NACK, 3, status=3), 1.0) == []
    assert s.on_bytes(header(0x80001234, 4), 1.0) == []


def test_a_request_an_esme_does_not_take_is_refused_with_its_resp():
    (reply,) = session().on_bytes(header(CommandId.BIND_TRANSCEIVER, 6), 1.0)
    assert answer(reply) == (CommandId.BIND_TRANSCEIVER_RESP, CommandStatus.ESME_RINVBNDSTS, 6)
    (reply,) = session().on_bytes(header(CommandId.DATA_SM, 7, b"\0" * 20), 1.0)
    assert answer(reply) == (CommandId.DATA_SM_RESP, CommandStatus.ESME_RX_P_APPN, 7)
    assert session().on_bytes(header(CommandId.ALERT_NOTIFICATION, 8), 1.0) == []


@pytest.mark.parametrize("length", [0, 8, 15, 0x7FFFFFFF])
def test_unframeable_command_length_loses_the_link_at_once(length):
    s = session()
    with pytest.raises(LinkLost, match="framing lost"):
        s.on_bytes(HEADER.pack(length, CommandId.DELIVER_SM, 0, 1), 1.0)


def test_receipt_in_two_reads_is_acked_only_once_recorded():
    s = session()
    raw = receipt()
    assert s.on_bytes(raw[:20], 1.0) == []
    assert s.on_bytes(raw[20:], 1.0) == []
    outcomes, _, acks = s.take_outcomes()
    assert [r.smsc_id for r in outcomes.receipts] == ["1a2b3"]
    assert [answer(a.pdu) for a in acks] == [(CommandId.DELIVER_SM_RESP, 0, 9)]
    assert [a.smsc_id for a in acks] == ["1a2b3"]


def _claimed_one(s: SmppSession, text: str = "x" * 300) -> None:
    s.add_blast(1, text, unaccented=False)
    s.queue_claimed([Claimed(id=11, blast_id=1, msisdn="84961234567", rank=0)])


def _respond(s: SmppSession, wire: list[bytes], status: int = 0, now: float = 2.0) -> None:
    for pdu in wire:
        _, _, _, seq = HEADER.unpack_from(pdu)
        body = b"" if status else b"ab\0"
        s.on_bytes(header(CommandId.SUBMIT_SM_RESP, seq, body, status), now)


def test_cancel_lets_the_written_part_finish_and_sends_nothing_more():
    s = session(window=1)
    _claimed_one(s)  # two parts
    first = s.fill(1.0)
    assert len(first) == 1
    assert s.cancel_blasts({1}) == 1
    assert s.cancel_blasts({1}) == 0  # the written part is still out: stopped already
    _respond(s, first)
    assert s.fill(3.0) == []
    outcomes, parts, _ = s.take_outcomes()
    assert outcomes.cancelled == [(11, 1)] and outcomes.submitted == []
    assert parts == 1 and s.capacity() == 0
    s.durable(parts)
    assert s.capacity() == 1 and s.blasts_in_hand == []


def test_outcomes_the_store_refused_come_back_with_their_window_slots():
    s = session(window=2)
    _claimed_one(s)
    _respond(s, s.fill(1.0))
    taken = s.take_outcomes()
    assert taken[0].submitted == [11] and s.capacity() == 0
    s.restore(*taken)
    outcomes, parts, _ = s.take_outcomes()
    assert outcomes.submitted == [11] and [p[:2] for p in outcomes.parts] == [(11, 1), (11, 2)]
    s.durable(parts)
    assert s.capacity() == 2


def test_system_error_retries_twice_with_doubling_backoff_then_fails_with_its_name():
    s = session(window=1)
    _claimed_one(s, "short")
    _respond(s, s.fill(0.0), status=CommandStatus.ESME_RSYSERR, now=0.0)
    assert s.fill(1.9) == []
    _respond(s, s.fill(2.1), status=CommandStatus.ESME_RSYSERR, now=2.1)
    assert s.fill(5.9) == []
    _respond(s, s.fill(6.2), status=CommandStatus.ESME_RSYSERR, now=6.2)
    (failed,) = s.take_outcomes()[0].failed
    assert failed == (11, 8, "ESME_RSYSERR (0x00000008) after 3 submission(s)")


def test_invalid_destination_fails_at_once():
    s = session()
    _claimed_one(s, "short")
    _respond(s, s.fill(0.0), status=CommandStatus.ESME_RINVDSTADR)
    assert s.take_outcomes()[0].failed[0][1] == 0x0B and not s.retry


def test_retry_table_defaults_and_keys():
    policy = RetryPolicy()
    assert policy.verdict(0x58, 1) == Verdict(retry=True, throttle=True, delay=0.05)
    assert policy.verdict(GENERIC_NACK, 2) == Verdict(retry=True, delay=4.0)
    assert not policy.verdict(GENERIC_NACK, 3).retry
    assert not policy.verdict(0x0B, 1).retry
    assert status_key("0x08") == status_key("esme_rsyserr") == 8
    assert status_key("generic_nack") == GENERIC_NACK


def test_retry_config_overrides_defaults_and_refuses_unknown_statuses():
    sms = SmsSettings.model_validate(
        {"retry": {"statuses": {"0x0B": {"action": "retry", "attempts": 2, "backoff": 1}}}}
    )
    assert sms.retry.policy().verdict(0x0B, 1) == Verdict(retry=True, delay=1.0)
    with pytest.raises(ValidationError, match="ESME_RNOPE.*hex"):
        SmsSettings.model_validate({"retry": {"statuses": {"ESME_RNOPE": {"action": "fail"}}}})
    with pytest.raises(ValidationError, match="attempts"):
        SmsSettings.model_validate(
            {"retry": {"statuses": {"0x08": {"action": "retry", "attempts": 0}}}}
        )


def test_backoff_keeps_growing_while_binds_succeed_but_links_fail_at_once():
    backoff = Backoff(0.5, 30.0, healthy_after=30.0, progress=100, rng=lambda: 1.0)
    delays = [backoff.link_lost(up_for=0.01, answered=0) for _ in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.link_lost(up_for=31.0, answered=0) == 0.5  # a healthy link resets it
    assert backoff.link_lost(up_for=1.0, answered=0) == 1.0
    assert backoff.link_lost(up_for=1.0, answered=100) == 0.5  # so does progress


def test_backoff_jitter_stays_within_half_to_full_delay():
    low = Backoff(1.0, 30.0, 30.0, 100, rng=lambda: 0.0)
    assert [low.next_delay() for _ in range(3)] == [0.5, 1.0, 2.0]


def test_an_smsc_unbind_is_answered_at_once_and_its_answers_to_written_parts_still_count():
    s = session()
    _claimed_one(s)  # two parts, both written
    wire = s.fill(1.0)
    first, *rest = wire
    unbind = header(CommandId.UNBIND, 40)
    answers = b"".join(header(CommandId.SUBMIT_SM_RESP, answer(p)[2], b"ab\0") for p in rest)
    (reply,) = s.on_bytes(unbind + answers, 2.0)
    assert answer(reply) == (CommandId.UNBIND_RESP, 0, 40)
    assert not s.wants_to_send(2.0) and not s.unbind_over(2.0)  # one part still unanswered
    s.on_bytes(header(CommandId.SUBMIT_SM_RESP, answer(first)[2], b"ab\0"), 2.5)
    assert s.unbind_over(2.5)
    outcomes, _, _ = s.take_outcomes()
    assert outcomes.submitted and not s.inflight  # nothing goes back to be sent twice


def test_an_unbound_link_gives_up_on_missing_answers_after_the_grace():
    s = session()
    _claimed_one(s)
    s.fill(1.0)
    s.on_bytes(header(CommandId.UNBIND, 40), 2.0)
    assert not s.unbind_over(2.0 + UNBIND_GRACE - 0.01)
    assert s.unbind_over(2.0 + UNBIND_GRACE)
    s.detach()
    assert len(s.ready) == 2  # resent on the next bind, as on any lost link


# -- fuzzing -------------------------------------------------------------------------
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_REPLY = 17  # deliver_sm_resp: header and an empty message_id


def _assert_bounded(s: SmppSession, data: bytes) -> None:
    try:
        replies = s.on_bytes(data, 1.0)
    except LinkLost as exc:
        assert "framing lost" in exc.reason
        return
    assert len(replies) <= len(data) // 16
    assert all(len(r) <= MAX_REPLY for r in replies)


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_only_ever_lose_the_link_or_get_bounded_answers(data):
    _assert_bounded(session(), data)


@FUZZ
@given(st.sampled_from([int(c) for c in CommandId] + [0x1234]), st.binary(max_size=600))
def test_any_body_under_any_command_is_parsed_or_malformed(command_id, body):
    raw = header(command_id, 1, body)
    for reader in (read_deliver_sm, read_message_id):
        try:
            reader(raw)
        except MalformedPdu as exc:
            assert exc.hex and exc.status in CommandStatus
    _assert_bounded(session(), raw)


@FUZZ
@given(st.data())
def test_mutated_receipts_never_raise_anything_but_malformed(data):
    raw = bytearray(receipt())
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(16, len(raw) - 1)) if len(raw) > 16 else 16
        if op == "flip" and at < len(raw):
            raw[at] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[at : at + data.draw(st.integers(1, 8))]
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    raw[0:4] = len(raw).to_bytes(4, "big")  # framing intact: the body is what is hostile
    with contextlib.suppress(MalformedPdu):
        read_deliver_sm(bytes(raw))
    _assert_bounded(session(), bytes(raw))


def test_a_part_accepted_after_its_message_failed_still_frees_its_window_slot():
    s = session(window=2)
    _claimed_one(s)  # two parts, both written
    first, second = s.fill(1.0)
    _respond(s, [first], status=CommandStatus.ESME_RINVDSTADR)
    _respond(s, [second])
    outcomes, parts, _ = s.take_outcomes()
    assert outcomes.failed[0][0] == 11 and [p[:2] for p in outcomes.parts] == [(11, 2)]
    s.durable(parts)
    assert s.capacity() == 2


def test_a_lost_message_writes_no_more_parts_records_its_answered_ones_and_no_outcome():
    s = session(window=1)
    _claimed_one(s)  # two parts
    s.queue_claimed([Claimed(id=12, blast_id=1, msisdn="84961234568", rank=0)])
    first = s.fill(1.0)
    assert len(first) == 1
    assert s.holding == {11, 12}
    assert s.lose({11}) == 1
    _respond(s, first)  # the part written before the loss is answered
    outcomes, parts, _ = s.take_outcomes()
    assert [p[:2] for p in outcomes.parts] == [(11, 1)]  # its receipt must find it
    assert outcomes.submitted == outcomes.failed == outcomes.cancelled == []
    s.durable(parts)
    assert s.holding == {12} and s.capacity() == 1
    rest = s.fill(3.0)
    assert len(rest) == 1  # window 1: the next part is message 12's
    _respond(s, rest)
    assert all(p[0] == 12 for p in s.take_outcomes()[0].parts)
