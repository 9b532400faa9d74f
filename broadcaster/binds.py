"""Which carrier binds this process holds, for /metrics.

Senders say when a bind comes up or goes down (`mark`); the metrics read a
snapshot. It is per process on purpose: each daemon reports its own binds, and
Prometheus scrapes every daemon.
"""

from __future__ import annotations

import threading


class BindStates:
    """Up or down per carrier, safe to mark from sender threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._up: dict[str, bool] = {}

    def mark(self, carrier: str, *, up: bool) -> None:
        with self._lock:
            self._up[carrier] = up

    def snapshot(self) -> dict[str, bool]:
        with self._lock:
            return dict(self._up)


BINDS = BindStates()  # one process, one set of sender threads


def mark(carrier: str, *, up: bool) -> None:
    """Record that this process's bind to `carrier` is up or down."""
    BINDS.mark(carrier, up=up)
