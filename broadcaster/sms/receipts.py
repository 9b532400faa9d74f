"""Read SMPP delivery receipts and match their ids to what submit_sm_resp returned.

Pure. Carriers put the id in the receipted_message_id TLV, in the `id:…`
text, or both, and some answer submit_sm in hex but write the receipt in
decimal (or the reverse), so an id is compared in every reading it allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FIELD = re.compile(r"(id|stat|err|sub|dlvrd):(\S*)", re.IGNORECASE)
_HEX = re.compile(r"^[0-9a-f]+$")
# message_state TLV values (SMPP 3.4, 5.2.28) as the text receipt would spell them.
_TLV_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
FINAL_STATS = frozenset({"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "REJECTD", "UNKNOWN"})


class NotAReceipt(ValueError):
    """Raised when a deliver_sm carries no receipt we can read (e.g. a mobile-originated SMS)."""


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt: which SMSC id it is about and its final stat."""

    smsc_id: str
    stat: str
    err: str = ""

    @property
    def final(self) -> bool:
        """Tell whether the receipt ends the part's life (not ENROUTE/ACCEPTD)."""
        return self.stat in FINAL_STATS

    @property
    def delivered(self) -> bool:
        """Tell whether the part reached the handset."""
        return self.stat == "DELIVRD"


def normalise_id(raw: str) -> str:
    """Return an SMSC message id in canonical form: trimmed, lower case, no leading zeros."""
    text = raw.strip().strip("\x00").lower()
    return text.lstrip("0") or "0" if text else ""


def id_readings(raw: str) -> tuple[str, ...]:
    """Return every canonical form an id may have been given in, exact reading first."""
    exact = normalise_id(raw)
    readings = [exact]
    if exact.isdigit():
        readings.append(format(int(exact), "x"))
    if _HEX.match(exact):
        readings.append(str(int(exact, 16)))
    return tuple(dict.fromkeys(readings))


def parse_receipt(
    short_message: bytes, receipted_id: str | None = None, message_state: int | None = None
) -> Receipt:
    """Read a receipt from its TLVs when present, else from its `id:… stat:…` text."""
    text = short_message.decode("latin-1", errors="replace")
    fields = {k.lower(): v for k, v in _FIELD.findall(text)}
    smsc_id = receipted_id if receipted_id else fields.get("id")
    stat = _TLV_STATES.get(message_state or 0) or fields.get("stat", "").upper()
    if not smsc_id or not stat:
        raise NotAReceipt(f"no receipt id/stat in deliver_sm: {text[:80]!r}")
    return Receipt(smsc_id=normalise_id(smsc_id), stat=stat, err=fields.get("err", ""))
