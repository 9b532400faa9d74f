"""Choose an SMS alphabet, count parts and build concatenated segments.

Pure: GSM 03.38 (with its extension table) when the text fits, else UCS-2;
optional Vietnamese unaccenting chosen per message; parts are counted before
anything is sent, and the user-data header (UDH) is ours so the concatenation
reference is under our control (smpplib's is random and collides).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
ESCAPE = 0x1B
_GSM_INDEX = {ch: i for i, ch in enumerate(GSM_BASIC) if i != ESCAPE}
_GSM_EXT_REVERSE = {code: ch for ch, code in GSM_EXTENSION.items()}

SINGLE_LIMIT = {"gsm7": 160, "ucs2": 70}
PART_LIMIT = {"gsm7": 153, "ucs2": 67}
DATA_CODING = {"gsm7": 0x00, "ucs2": 0x08}
ESM_CLASS_UDHI = 0x40
DEFAULT_MAX_PARTS = 6

_VIETNAMESE_EXTRA = str.maketrans({"đ": "d", "Đ": "D"})


class Encoding(StrEnum):
    """Alphabet an SMS travels in."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"


class TextTooLong(ValueError):
    """Raised when a text needs more parts than the configured cap."""


@dataclass(frozen=True)
class EncodedText:
    """A text encoded for SMPP, already cut into part payloads (no UDH)."""

    text: str
    encoding: Encoding
    segments: tuple[bytes, ...]

    @property
    def parts(self) -> int:
        """Return how many SMS this text costs per recipient."""
        return len(self.segments)

    @property
    def data_coding(self) -> int:
        """Return the SMPP data_coding value of the encoding."""
        return DATA_CODING[self.encoding]


@dataclass(frozen=True)
class Segment:
    """One part as it arrives at the SMSC, with its concatenation header read."""

    ref: int | None
    total: int
    seq: int
    payload: bytes


def unaccent(text: str) -> str:
    """Strip Vietnamese diacritics (and đ) so the text fits GSM 7-bit."""
    decomposed = unicodedata.normalize("NFD", text.translate(_VIETNAMESE_EXTRA))
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return unicodedata.normalize("NFC", stripped)


def gsm_septets(text: str) -> int | None:
    """Count GSM septets of a text (extension characters count two), None if it does not fit."""
    count = 0
    for ch in text:
        if ch in _GSM_INDEX:
            count += 1
        elif ch in GSM_EXTENSION:
            count += 2
        else:
            return None
    return count


def encode_text(
    text: str, *, unaccented: bool = False, max_parts: int = DEFAULT_MAX_PARTS
) -> EncodedText:
    """Encode a text as GSM 7-bit when it fits, else UCS-2, refusing more than max_parts."""
    if not text:
        raise ValueError("SMS text is empty")
    body = unicodedata.normalize("NFC", unaccent(text) if unaccented else text)
    if gsm_septets(body) is not None:
        encoding, segments = Encoding.GSM7, _gsm_segments(body)
    else:
        encoding, segments = Encoding.UCS2, _ucs2_segments(body)
    if len(segments) > max_parts:
        hint = "" if unaccented or encoding is Encoding.GSM7 else "; unaccenting may shorten it"
        raise TextTooLong(
            f"text needs {len(segments)} SMS parts as {encoding} ({len(body)} characters); "
            f"the limit is {max_parts} parts — shorten it{hint}"
        )
    return EncodedText(text=body, encoding=encoding, segments=tuple(segments))


def _gsm_units(text: str) -> list[bytes]:
    return [
        bytes([_GSM_INDEX[ch]]) if ch in _GSM_INDEX else bytes([ESCAPE, GSM_EXTENSION[ch]])
        for ch in text
    ]


def _ucs2_units(text: str) -> list[bytes]:
    # A character outside the BMP is a surrogate pair: two units that must stay together.
    return [ch.encode("utf-16-be") for ch in text]


def _pack(units: list[bytes], single: int, per_part: int, unit_size: int) -> list[bytes]:
    total = sum(len(u) for u in units) // unit_size
    if total <= single:
        return [b"".join(units)]
    segments: list[bytes] = []
    current: list[bytes] = []
    used = 0
    for unit in units:
        size = len(unit) // unit_size
        if used + size > per_part:
            segments.append(b"".join(current))
            current, used = [], 0
        current.append(unit)
        used += size
    segments.append(b"".join(current))
    return segments


def _gsm_segments(text: str) -> list[bytes]:
    return _pack(_gsm_units(text), SINGLE_LIMIT["gsm7"], PART_LIMIT["gsm7"], 1)


def _ucs2_segments(text: str) -> list[bytes]:
    return _pack(_ucs2_units(text), SINGLE_LIMIT["ucs2"], PART_LIMIT["ucs2"], 2)


def short_messages(encoded: EncodedText, ref: int) -> tuple[tuple[int, bytes], ...]:
    """Return (esm_class, short_message) per part, with our UDH when concatenated."""
    if encoded.parts == 1:
        return ((0x00, encoded.segments[0]),)
    if not 0 <= ref <= 0xFF:
        raise ValueError(f"concatenation reference must be 0..255, got {ref}")
    total = encoded.parts
    return tuple(
        (ESM_CLASS_UDHI, bytes([0x05, 0x00, 0x03, ref, total, seq]) + payload)
        for seq, payload in enumerate(encoded.segments, start=1)
    )


def read_segment(esm_class: int, short_message: bytes) -> Segment:
    """Split a received short_message into its concatenation header and payload."""
    if not esm_class & ESM_CLASS_UDHI:
        return Segment(ref=None, total=1, seq=1, payload=short_message)
    udh_len = short_message[0]
    header = short_message[1 : 1 + udh_len]
    payload = short_message[1 + udh_len :]
    pos = 0
    while pos < len(header):
        iei, length = header[pos], header[pos + 1]
        data = header[pos + 2 : pos + 2 + length]
        if iei == 0x00 and length == 3:
            return Segment(ref=data[0], total=data[1], seq=data[2], payload=payload)
        if iei == 0x08 and length == 4:
            return Segment(
                ref=int.from_bytes(data[:2], "big"), total=data[2], seq=data[3], payload=payload
            )
        pos += 2 + length
    return Segment(ref=None, total=1, seq=1, payload=payload)


def decode_payload(payload: bytes, data_coding: int) -> str:
    """Decode one part's payload (unpacked GSM septets or UCS-2) back to text."""
    if data_coding == DATA_CODING["ucs2"]:
        return payload.decode("utf-16-be")
    out: list[str] = []
    escaped = False
    for byte in payload:
        if escaped:
            out.append(_GSM_EXT_REVERSE.get(byte, " "))
            escaped = False
        elif byte == ESCAPE:
            escaped = True
        else:
            out.append(GSM_BASIC[byte])
    return "".join(out)
