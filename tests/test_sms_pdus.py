"""Our packed submit_sm, bind_transceiver and deliver_sm reader must agree with smpplib."""

import pytest
import smpplib.consts
import smpplib.smpp

from broadcaster.sms.pdu import bind_transceiver_pdu, read_deliver_sm, submit_sm_pdu


@pytest.mark.parametrize(
    ("source", "ton", "npi", "esm", "dc", "body"),
    [
        ("DINHHOA", smpplib.consts.SMPP_TON_ALNUM, smpplib.consts.SMPP_NPI_UNK, 0, 0, b"hi"),
        (
            "8486123",
            smpplib.consts.SMPP_TON_INTL,
            smpplib.consts.SMPP_NPI_ISDN,
            0x40,
            8,
            bytes([5, 0, 3, 9, 2, 1]) + "ư".encode("utf-16-be") * 67,
        ),
    ],
)
def test_packed_submit_sm_equals_smpplib(source, ton, npi, esm, dc, body):
    reference = smpplib.smpp.make_pdu(
        "submit_sm",
        sequence=77,
        source_addr_ton=ton,
        source_addr_npi=npi,
        source_addr=source,
        dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
        dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
        destination_addr="84961234567",
        esm_class=esm,
        data_coding=dc,
        registered_delivery=smpplib.consts.SMPP_SMSC_DELIVERY_RECEIPT_BOTH,
        short_message=body,
    )
    reference.sequence = 77
    assert submit_sm_pdu(77, source, "84961234567", esm, dc, body) == reference.generate()


@pytest.mark.parametrize(
    ("tlvs", "text"),
    [
        ({"receipted_message_id": "1a2b3", "message_state": 2}, b"id:1a2b3 stat:DELIVRD"),
        ({}, b"id:107187 sub:001 dlvrd:000 stat:UNDELIV err:001 text:"),
    ],
)
def test_deliver_sm_reader_agrees_with_smpplib(tlvs, text):
    wire = smpplib.smpp.make_pdu(
        "deliver_sm",
        sequence=9,
        service_type="",
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="84961234567",
        dest_addr_ton=5,
        dest_addr_npi=0,
        destination_addr="DINHHOA",
        esm_class=4,
        short_message=text,
        **tlvs,
    )
    wire.sequence = 9
    raw = wire.generate()
    parsed = smpplib.smpp.parse_pdu(raw, client=_Client(), allow_unknown_opt_params=True)
    deliver = read_deliver_sm(raw)
    short_message, found = deliver.short_message, deliver.tlvs
    assert short_message == parsed.short_message == text
    receipted = found.get(0x001E)
    assert (receipted.rstrip(b"\0") if receipted else None) == (parsed.receipted_message_id or None)
    state = found.get(0x0427)
    assert (state[0] if state else None) == parsed.message_state


def test_packed_bind_transceiver_equals_smpplib():
    reference = smpplib.smpp.make_pdu(
        "bind_transceiver",
        sequence=3,
        system_id="viettel",
        password="secret",
        system_type="",
        interface_version=0x34,
        addr_ton=0,
        addr_npi=0,
        address_range="",
    )
    reference.sequence = 3
    assert bind_transceiver_pdu(3, "viettel", "secret") == reference.generate()


class _Client:
    sequence = 0

    def next_sequence(self):
        return 0
