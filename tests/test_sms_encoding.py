"""Unit tests of SMS alphabet choice, part counting and concatenation headers."""

import pytest

from broadcaster.sms.encoding import (
    ESM_CLASS_UDHI,
    Encoding,
    TextTooLong,
    decode_payload,
    encode_text,
    gsm_septets,
    read_segment,
    short_messages,
    ucs2_chars,
    unaccent,
)

THANH_HOA = (
    "Tăng cường sử dụng các dịch vụ công trực tuyến trên Cổng dịch vụ công tỉnh "
    "Thanh Hóa (dichvucong.thanhhoa.gov.vn), giảm di chuyển, tiếp xúc đông người; "
    "phòng tránh nguy cơ lây, nhiễm virus Corona"
)


def reassemble(encoded, ref=7):
    segments = [read_segment(esm, sm) for esm, sm in short_messages(encoded, ref)]
    return "".join(decode_payload(s.payload, encoded.data_coding) for s in segments)


def test_thanh_hoa_message_is_three_ucs2_parts():
    encoded = encode_text(THANH_HOA)
    assert len(THANH_HOA) == 195
    assert encoded.encoding is Encoding.UCS2
    assert encoded.data_coding == 0x08
    assert encoded.parts == 3
    assert reassemble(encoded) == THANH_HOA


def test_thanh_hoa_message_unaccented_is_two_gsm_parts():
    encoded = encode_text(THANH_HOA, unaccented=True)
    assert encoded.encoding is Encoding.GSM7
    assert encoded.parts == 2
    assert encoded.text.startswith("Tang cuong su dung cac dich vu cong truc tuyen")
    assert "dong nguoi" in encoded.text
    assert reassemble(encoded) == encoded.text


def test_unaccent_maps_d_with_stroke_and_all_tones():
    assert unaccent("Đắk Lắk đồng Ước ỷ ẫ ợ") == "Dak Lak dong Uoc y a o"


def test_decomposed_input_is_composed_before_counting():
    nfd = "Hoa\u0300"  # "Hoà" typed with a combining grave accent
    assert encode_text(nfd).text == "Hoà"


@pytest.mark.parametrize(
    ("length", "parts"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (918, 6)]
)
def test_gsm_part_boundaries(length, parts):
    assert encode_text("a" * length, max_parts=10).parts == parts


@pytest.mark.parametrize(("length", "parts"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_part_boundaries(length, parts):
    assert encode_text("ư" * length).parts == parts


def test_extension_characters_count_double():
    assert gsm_septets("{}") == 4
    assert gsm_septets("€") == 2
    assert encode_text("€" * 80).parts == 1
    assert encode_text("€" * 81).parts == 2


def test_extension_escape_is_never_split_across_parts():
    text = "a" * 152 + "[" + "b" * 10
    encoded = encode_text(text)
    assert encoded.encoding is Encoding.GSM7
    assert encoded.segments[0] == b"a" * 152
    assert encoded.segments[1].startswith(b"\x1b\x3c")
    assert reassemble(encoded) == text


def test_surrogate_pair_is_never_split_across_parts():
    text = "ư" * 66 + "😷" + "ư" * 10
    encoded = encode_text(text)
    assert [len(s) for s in encoded.segments] == [132, 4 + 20]
    assert reassemble(encoded) == text


def test_one_non_gsm_character_forces_ucs2():
    assert encode_text("Hello ư").encoding is Encoding.UCS2
    assert encode_text("Hello é").encoding is Encoding.GSM7


def test_every_gsm_character_roundtrips():
    text = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà^{}\\[~]|€\f"
    encoded = encode_text(text)
    assert encoded.encoding is Encoding.GSM7
    assert reassemble(encoded) == text


def test_text_over_the_part_cap_is_refused_with_the_count():
    with pytest.raises(TextTooLong, match=r"needs 7 SMS parts as ucs2.*limit is 6.*unaccenting"):
        encode_text("ư" * 67 * 7)


def test_part_cap_is_configurable():
    with pytest.raises(TextTooLong, match="limit is 1"):
        encode_text("a" * 161, max_parts=1)


def test_empty_text_is_refused():
    with pytest.raises(ValueError, match="empty"):
        encode_text("")


def test_udh_carries_the_callers_reference_and_sequence():
    encoded = encode_text(THANH_HOA)
    pdus = short_messages(encoded, 200)
    assert [esm for esm, _ in pdus] == [ESM_CLASS_UDHI] * 3
    assert [sm[:6] for _, sm in pdus] == [bytes([5, 0, 3, 200, 3, seq]) for seq in (1, 2, 3)]


def test_single_part_has_no_udh():
    assert short_messages(encode_text("hi"), 5) == ((0, b"hi"),)


def test_reference_outside_one_byte_is_refused():
    with pytest.raises(ValueError, match="0..255"):
        short_messages(encode_text("a" * 200), 256)


def test_sixteen_bit_reference_udh_is_read():
    segment = read_segment(ESM_CLASS_UDHI, bytes([6, 8, 4, 1, 2, 3, 1]) + b"xy")
    assert (segment.ref, segment.total, segment.seq, segment.payload) == (258, 3, 1, b"xy")


# A commune notice as typed on a phone: smart quotes, an en dash, an ellipsis.
BINH_YEN = (
    "UBND xã Bình Yên thông báo: từ 6h ngày 5/9 thực hiện “ở yên tại chỗ” – chỉ ra ngoài "
    "khi rất cần thiết; đeo khẩu trang, giữ khoảng cách 2m… Gọi 1900 9095"
)


def test_notice_with_typographic_punctuation_unaccents_to_one_gsm_part():
    assert len(BINH_YEN) == 152
    assert encode_text(BINH_YEN).parts == 3
    encoded = encode_text(BINH_YEN, unaccented=True)
    assert encoded.encoding is Encoding.GSM7
    assert encoded.parts == 1
    assert '"o yen tai cho" - chi ra' in encoded.text
    assert encoded.text.endswith("2m... Goi 1900 9095")
    assert reassemble(encoded) == encoded.text


@pytest.mark.parametrize(
    ("typed", "folded"),
    [
        ("\u201cA\u201d \u201eB\u201f \u00abC\u00bb", '"A" "B" "C"'),
        ("\u2018a\u2019 \u201ab\u201b 5\u2032", "'a' 'b' 5'"),
        ("1\u20132 3\u20144 \u2212 5", "1-2 3-4 - 5"),
        ("xong\u2026", "xong..."),
        ("10\u00a0000 20\u202f000 a\u2009b\tc", "10 000 20 000 a b c"),
        ("a\u200bb\u00adc\ufeff", "abc"),
    ],
)
def test_unaccent_folds_typographic_punctuation_to_gsm(typed, folded):
    assert unaccent(typed) == folded
    assert gsm_septets(unaccent(typed)) is not None


def test_ucs2_chars_names_what_still_forces_ucs2_once_each_in_order():
    assert ucs2_chars("Đà Lạt “mưa”") == ("Đ", "ạ", "“", "ư", "”")
    assert ucs2_chars("Đà Lạt “mưa” ✓ – ✓ 😀", unaccented=True) == ("✓", "😀")
    assert ucs2_chars(BINH_YEN, unaccented=True) == ()
