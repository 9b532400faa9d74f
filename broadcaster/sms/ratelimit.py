"""A token bucket that backs off when the SMSC throttles us and recovers slowly.

Pure: the time comes in as an argument (monotonic seconds). A carrier's
`rate` is a cap per second, burst included: in any second a bucket lets
through at most its burst plus its refill, so `within(cap)` refills at
`cap - burst`. Nodes sharing a carrier each take a share (`resize`).
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

    @classmethod
    def within(cls, cap: float) -> TokenBucket:
        """A bucket that never lets more than `cap` through in any one second."""
        burst, rate = _split(cap)
        return cls(rate, burst)

    def resize(self, cap: float) -> None:
        """Take a new cap a second (this node's share changed), keeping any throttling:
        a bucket at half its ceiling stays at half of the new one."""
        burst, ceiling = _split(cap)
        fraction = self.rate / self.ceiling
        self.burst, self.ceiling = burst, ceiling
        self.rate = min(ceiling, max(MIN_RATE, ceiling * fraction))
        self.tokens = min(self.tokens, burst)

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


def _split(cap: float) -> tuple[float, float]:
    """Burst and refill whose sum is `cap` (a burst of 1/20 s, at least one message;
    below 2 msg/s the refill keeps half the cap and the sum exceeds it by under 1)."""
    burst = max(1.0, cap / 20)
    return burst, max(cap - burst, cap / 2)
