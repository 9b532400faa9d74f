"""Login throttling: repeated failures lock a name, a noisy client is refused, time heals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broadcaster.console.guard import GuardPolicy, LoginGuard

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_five_failures_lock_the_name_from_any_client_until_the_lock_ends():
    guard = LoginGuard(GuardPolicy(account_failures=5, lock=timedelta(minutes=15)))
    for i in range(4):
        guard.failed("an", f"10.0.0.{i}", T0)
    assert guard.wait("an", "10.0.0.9", T0) is None
    guard.failed("an", "10.0.0.4", T0)
    assert guard.wait("an", "10.0.0.9", T0 + timedelta(minutes=1)) == timedelta(minutes=14)
    assert guard.wait("bình", "10.0.0.9", T0) is None
    assert guard.wait("an", "10.0.0.9", T0 + timedelta(minutes=15)) is None


def test_failures_spread_beyond_the_window_do_not_add_up_and_a_success_clears_them():
    guard = LoginGuard(GuardPolicy(account_failures=3, window=timedelta(minutes=10)))
    guard.failed("an", "c", T0)
    guard.failed("an", "c", T0 + timedelta(minutes=11))
    guard.failed("an", "c", T0 + timedelta(minutes=12))
    assert guard.wait("an", "c", T0 + timedelta(minutes=12)) is None
    guard.succeeded("an")
    guard.failed("an", "c", T0 + timedelta(minutes=13))
    assert guard.wait("an", "c", T0 + timedelta(minutes=13)) is None


def test_one_client_trying_many_names_is_refused_and_memory_stays_bounded():
    guard = LoginGuard(GuardPolicy(client_failures=20, max_entries=50))
    for i in range(20):
        guard.failed(f"name-{i}", "203.0.113.7", T0)
    assert guard.wait("someone-else", "203.0.113.7", T0) is not None
    assert guard.wait("someone-else", "203.0.113.8", T0) is None
    for i in range(500):
        guard.failed(f"n{i}", f"c{i}", T0)
    assert len(guard._accounts) <= 50 and len(guard._clients) <= 50
