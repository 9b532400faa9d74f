"""Login throttling per client: one address trying many names is refused for a while.

Guessing comes in two shapes. Many passwords for one account are stopped by
the account store (`operations.login` locks the account after repeated
failures, on every node). One client trying many names is stopped here: its
failures count inside a sliding window and, over the limit, the client waits.
The clock is an argument, and memory is bounded: the oldest entries go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class GuardPolicy:
    """How many failures from one client inside `window` make it wait `lock`."""

    client_failures: int = 20
    window: timedelta = timedelta(minutes=15)
    lock: timedelta = timedelta(minutes=15)
    max_entries: int = 10_000


@dataclass
class _Entry:
    failures: list[datetime]
    locked_until: datetime | None = None


class LoginGuard:
    """Thread-safe failure counters keyed by client address."""

    def __init__(self, policy: GuardPolicy | None = None) -> None:
        self.policy = policy or GuardPolicy()
        self._lock = threading.Lock()
        self._clients: OrderedDict[str, _Entry] = OrderedDict()

    def wait(self, client: str, now: datetime) -> timedelta | None:
        """How long this client must wait before trying again, or None to go on."""
        with self._lock:
            entry = self._clients.get(client)
        if entry is None or entry.locked_until is None or entry.locked_until <= now:
            return None
        return entry.locked_until - now

    def failed(self, client: str, now: datetime) -> None:
        """Count a failed attempt; make the client wait once it goes over the limit."""
        p = self.policy
        with self._lock:
            entry = self._clients.pop(client, None) or _Entry([])
            entry.failures = [t for t in entry.failures if now - t < p.window] + [now]
            if len(entry.failures) >= p.client_failures:
                entry.locked_until = now + p.lock
                entry.failures = []
            self._clients[client] = entry
            while len(self._clients) > p.max_entries:
                self._clients.popitem(last=False)
