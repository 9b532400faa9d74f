"""When a standby may end the session of a scheduler that no longer beats.

The scheduler lock is a PostgreSQL session lock, so it dies with the
process, but not with a process that is frozen (SIGSTOP, a hung thread, a
VM paused) or cut off from the database by the network: the server keeps
such a session for as long as TCP does (hours with default keepalives)
and every standby waits behind it. A standby that sees the same lock
holder write no heartbeat for `fence_after` ends that session with
`pg_terminate_backend` and takes the lock. A leader that wakes finds its
session gone at its next heartbeat and stops (`daemon.lock_lost`); the
dispatch table keeps anything it fires meanwhile from firing twice.

Pure: the standby's own monotonic clock comes in as an argument, so a
clock difference between machines never counts as silence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

Seen = tuple[int, datetime | None]  # (the lock holder's backend pid, its last heartbeat)


@dataclass
class LeaderWatch:
    """Follow one lock holder's heartbeats as a standby sees them."""

    after: float  # seconds without a new heartbeat from the same holder
    _seen: Seen | None = field(default=None, init=False)
    _since: float = field(default=0.0, init=False)

    def stalled(self, holder: int | None, heartbeat: datetime | None, mono: float) -> bool:
        """Tell whether `holder` has held the lock with no new heartbeat for `after`
        seconds of our watching. A new holder or a new heartbeat starts the count
        again, so a leader that just took over (its first status not yet written)
        is never taken for a silent one."""
        if holder is None:
            self._seen = None
            return False
        if (holder, heartbeat) != self._seen:
            self._seen, self._since = (holder, heartbeat), mono
            return False
        return mono - self._since >= self.after
