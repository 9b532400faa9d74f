"""A token bucket that backs off when the SMSC throttles us and recovers slowly.

Pure: the time comes in as an argument (monotonic seconds).
"""

from __future__ import annotations

MIN_RATE = 1.0
RECOVERY_PER_SECOND = 0.25  # fraction of the configured rate regained a second
COOLDOWN = 1.0  # seconds: a burst of throttled answers to one window halves the rate once


class TokenBucket:
    """Allow `rate` messages a second with a small burst; halve on throttling."""

    def __init__(self, rate: float, burst: float = 1.0):
        self.ceiling = rate
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self._last: float | None = None
        self._last_cut: float | None = None
        self._strikes = 0

    def _refill(self, now: float) -> None:
        if self._last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait(self, now: float) -> float:
        """Return seconds until a token is available."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def slow_down(self, now: float) -> float:
        """Halve the rate after a throttle; return a pause that doubles per strike."""
        self._refill(now)
        if self._last_cut is None or now - self._last_cut >= COOLDOWN:
            self.rate = max(MIN_RATE, self.rate / 2)
            self._last_cut = now
        self._strikes = min(self._strikes + 1, 6)
        return 0.05 * 2 ** (self._strikes - 1)

    def recover(self, now: float) -> None:
        """Regain rate gradually after a success."""
        if self.rate < self.ceiling and self._last is not None:
            gained = (now - self._last) * RECOVERY_PER_SECOND * self.ceiling
            self.rate = min(self.ceiling, self.rate + max(gained, self.ceiling * 0.001))
        self._strikes = 0
        self._refill(now)
