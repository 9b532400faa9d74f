"""Our packed submit_sm must be byte-identical to smpplib's."""

import pytest
import smpplib.consts
import smpplib.smpp

from broadcaster.sms.smpp import submit_sm_pdu


@pytest.mark.parametrize(
    ("source", "ton", "npi", "esm", "dc", "body"),
    [
        ("DINHHOA", smpplib.consts.SMPP_TON_ALNUM, smpplib.consts.SMPP_NPI_UNK, 0, 0, b"hi"),
        ("8486123", smpplib.consts.SMPP_TON_INTL, smpplib.consts.SMPP_NPI_ISDN, 0x40, 8,
         bytes([5, 0, 3, 9, 2, 1]) + "ư".encode("utf-16-be") * 67),
    ],
)
def test_packed_submit_sm_equals_smpplib(source, ton, npi, esm, dc, body):
    reference = smpplib.smpp.make_pdu(
        "submit_sm", sequence=77, source_addr_ton=ton, source_addr_npi=npi, source_addr=source,
        dest_addr_ton=smpplib.consts.SMPP_TON_INTL, dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
        destination_addr="84961234567", esm_class=esm, data_coding=dc,
        registered_delivery=smpplib.consts.SMPP_SMSC_DELIVERY_RECEIPT_BOTH, short_message=body,
    )
    reference.sequence = 77
    assert submit_sm_pdu(77, source, "84961234567", esm, dc, body) == reference.generate()
