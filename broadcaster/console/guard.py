"""Login throttling: lock an account name after repeated failures, slow a noisy client.

Two counters, because guessing comes in two shapes: many passwords for one
account (lock that name for a while, whoever asks) and one client trying many
names (refuse that client for a while). Failures count inside a sliding
window; a success clears the account's counter. The clock is an argument, and
memory is bounded: the oldest entries go first when the table is full.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class GuardPolicy:
    """How many failures inside `window` lock for `lock`, per account and per client."""

    account_failures: int = 5
    client_failures: int = 20
    window: timedelta = timedelta(minutes=15)
    lock: timedelta = timedelta(minutes=15)
    max_entries: int = 10_000


@dataclass
class _Entry:
    failures: list[datetime]
    locked_until: datetime | None = None


class LoginGuard:
    """Thread-safe failure counters keyed by account name key and by client address."""

    def __init__(self, policy: GuardPolicy | None = None) -> None:
        self.policy = policy or GuardPolicy()
        self._lock = threading.Lock()
        self._accounts: OrderedDict[str, _Entry] = OrderedDict()
        self._clients: OrderedDict[str, _Entry] = OrderedDict()

    def wait(self, account: str, client: str, now: datetime) -> timedelta | None:
        """How long this attempt must wait (locked account or client), or None to go on."""
        with self._lock:
            waits = [_remaining(table.get(key), now)
                     for table, key in ((self._accounts, account), (self._clients, client))]
        longest = max((w for w in waits if w is not None), default=None)
        return longest

    def failed(self, account: str, client: str, now: datetime) -> None:
        """Count a failed attempt; lock what went over its limit."""
        p = self.policy
        with self._lock:
            self._count(self._accounts, account, now, p.account_failures)
            self._count(self._clients, client, now, p.client_failures)

    def succeeded(self, account: str) -> None:
        """Clear an account's failures after a good login (the client's stay counted)."""
        with self._lock:
            self._accounts.pop(account, None)

    def _count(self, table: OrderedDict[str, _Entry], key: str, now: datetime,
               limit: int) -> None:
        entry = table.pop(key, None) or _Entry([])
        entry.failures = [t for t in entry.failures if now - t < self.policy.window] + [now]
        if len(entry.failures) >= limit:
            entry.locked_until = now + self.policy.lock
            entry.failures = []
        table[key] = entry
        while len(table) > self.policy.max_entries:
            table.popitem(last=False)


def _remaining(entry: _Entry | None, now: datetime) -> timedelta | None:
    if entry is None or entry.locked_until is None or entry.locked_until <= now:
        return None
    return entry.locked_until - now
