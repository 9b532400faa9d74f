"""Unit tests of delivery-receipt parsing and id normalising."""

import pytest

from broadcaster.sms.receipts import NotAReceipt, id_readings, normalise_id, parse_receipt
from broadcaster.sms.states import MessageState, Priority, can_move, moving_to

TEXT = (
    b"id:0001a2b3 sub:001 dlvrd:001 submit date:2101010000 done date:2101010000 "
    b"stat:DELIVRD err:000 text:"
)


def test_text_receipt_is_read():
    receipt = parse_receipt(TEXT)
    assert (receipt.smsc_id, receipt.stat, receipt.err) == ("1a2b3", "DELIVRD", "000")
    assert receipt.delivered and receipt.final


def test_tlv_id_and_state_win_over_text():
    receipt = parse_receipt(TEXT.replace(b"DELIVRD", b"ENROUTE"), "ABC\x00", 5)
    assert (receipt.smsc_id, receipt.stat) == ("abc", "UNDELIV")
    assert receipt.final and not receipt.delivered


def test_intermediate_receipt_is_not_final():
    assert not parse_receipt(b"id:5 stat:ENROUTE err:000").final


def test_mobile_originated_text_is_not_a_receipt():
    with pytest.raises(NotAReceipt):
        parse_receipt("xin chào".encode())


def test_hex_and_decimal_readings_of_an_id():
    assert id_readings("107187") == ("107187", "1a2b3", "1077639")
    assert id_readings("1A2B3") == ("1a2b3", "107187")
    assert id_readings("msg-7") == ("msg-7",)
    assert normalise_id("000") == "0"


def test_message_state_moves_are_checked_in_one_place():
    assert can_move(MessageState.QUEUED, MessageState.SENDING)
    assert can_move(MessageState.SENDING, MessageState.QUEUED)
    assert moving_to(MessageState.FAILED) == "state IN ('sending', 'submitted')"
    assert not can_move(MessageState.DELIVERED, MessageState.QUEUED)
    assert not can_move(MessageState.QUEUED, MessageState.DELIVERED)
    assert Priority.URGENT.rank < Priority.ROUTINE.rank
