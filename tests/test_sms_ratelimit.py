"""The token bucket: a carrier's rate is a cap per second, burst included, and a node
sharing the carrier takes its share of it without losing a throttle's back-off."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from broadcaster.sms.ratelimit import TokenBucket
from broadcaster.sms.session import BindConfig, SmppSession


def most_in_one_second(bucket: TokenBucket, seconds: float, step: float = 0.001) -> int:
    """Take greedily every `step` for `seconds`; the most taken in any window of 1 s."""
    taken: list[float] = []
    ticks = int(seconds / step)
    for i in range(ticks):
        now = i * step
        while bucket.take(now):
            taken.append(now)
    best, start = 0, 0
    for end, at in enumerate(taken):
        while at - taken[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


@given(st.floats(min_value=2, max_value=2000))
def test_a_bucket_within_a_cap_never_lets_more_through_in_any_second(cap: float) -> None:
    assert most_in_one_second(TokenBucket.within(cap), 3.0) <= cap


def test_a_third_share_of_300_lets_100_a_second_and_sends_most_of_it() -> None:
    bucket = TokenBucket.within(300)
    bucket.resize(100)
    assert 90 <= most_in_one_second(bucket, 3.0) <= 100


def test_a_throttled_bucket_keeps_its_back_off_when_its_share_changes() -> None:
    bucket = TokenBucket.within(300)
    bucket.slow_down(0.0)
    assert bucket.rate == bucket.ceiling / 2
    bucket.resize(100)
    assert bucket.rate == bucket.ceiling / 2
    assert bucket.ceiling == 95  # 100 a second: a burst of 5 and a refill of 95
    bucket.recover(10.0)
    assert bucket.rate == bucket.ceiling


def test_a_session_shares_its_carriers_window_rounding_down() -> None:
    session = SmppSession(BindConfig("viettel", "h", 1, "s", "p", "S", rate=300, window=100))
    session.share(3)
    assert (session.window, session.capacity()) == (33, 33)
    session.share(1)
    assert session.window == 100
