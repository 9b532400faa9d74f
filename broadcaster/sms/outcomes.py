"""What a sender holds and what it learnt: plain values between the session and the outbox.

Pure: the session (no database) produces Outcomes, the outbox writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from broadcaster.sms.receipts import Receipt


@dataclass(frozen=True)
class Claimed:
    """A message a sender now holds under lease."""

    id: int
    blast_id: int
    msisdn: str
    rank: int


@dataclass
class Outcomes:
    """What a sender learnt since its last write, in arrival order per kind."""

    parts: list[tuple[int, int, str]] = field(default_factory=list)  # message, seq, smsc id
    submitted: list[int] = field(default_factory=list)
    failed: list[tuple[int, int, str]] = field(default_factory=list)  # message, status, reason
    released: list[int] = field(default_factory=list)
    cancelled: list[tuple[int, int]] = field(default_factory=list)  # message, parts sent
    receipts: list[Receipt] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.parts
            or self.submitted
            or self.failed
            or self.released
            or self.cancelled
            or self.receipts
        )

    def then(self, later: Outcomes) -> Outcomes:
        """Return these outcomes followed by later ones (a failed write offered again)."""
        return Outcomes(
            self.parts + later.parts,
            self.submitted + later.submitted,
            self.failed + later.failed,
            self.released + later.released,
            self.cancelled + later.cancelled,
            self.receipts + later.receipts,
        )
