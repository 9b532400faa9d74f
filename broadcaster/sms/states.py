"""States of a blast and of one recipient's message, and the moves between them."""

from __future__ import annotations

from enum import StrEnum


class BlastState(StrEnum):
    """Where a blast is: drafted, approved (expanded, sending) or cancelled."""

    DRAFT = "draft"
    APPROVED = "approved"
    CANCELLED = "cancelled"


class MessageState(StrEnum):
    """Where one recipient's message is; the last four are final."""

    QUEUED = "queued"
    SENDING = "sending"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Priority(StrEnum):
    """Urgent goes first in every queue and ignores quiet hours."""

    URGENT = "urgent"
    ROUTINE = "routine"

    @property
    def rank(self) -> int:
        """Return the sort key: lower is sent first."""
        return 0 if self is Priority.URGENT else 1


TRANSITIONS: dict[MessageState, frozenset[MessageState]] = {
    MessageState.QUEUED: frozenset({MessageState.SENDING, MessageState.CANCELLED}),
    # A sending message returns to the queue when its lease lapses (crash) or it is released;
    # its sender cancels it when its blast is cancelled before it went out.
    MessageState.SENDING: frozenset(
        {
            MessageState.QUEUED,
            MessageState.SUBMITTED,
            MessageState.FAILED,
            MessageState.CANCELLED,
        }
    ),
    MessageState.SUBMITTED: frozenset(
        {MessageState.DELIVERED, MessageState.FAILED, MessageState.EXPIRED}
    ),
}


def can_move(old: MessageState, new: MessageState) -> bool:
    """Tell whether a message may move from old to new."""
    return new in TRANSITIONS.get(old, frozenset())


def moving_to(new: MessageState) -> str:
    """Return the SQL condition `state IN (…)` naming every state allowed to move to new.

    Every UPDATE of a message's state uses it, so the table above is the one
    place that decides, and a late or repeated outcome changes nothing.
    """
    sources = sorted(old for old in TRANSITIONS if can_move(old, new))
    return "state IN (" + ", ".join(f"'{old}'" for old in sources) + ")"
