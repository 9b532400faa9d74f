"""Login throttling per client: many failures from one address make it wait; time heals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broadcaster.console.guard import GuardPolicy, LoginGuard

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_a_client_over_the_limit_waits_until_the_lock_ends_and_others_do_not():
    guard = LoginGuard(GuardPolicy(client_failures=20, lock=timedelta(minutes=15)))
    for _ in range(19):
        guard.failed("203.0.113.7", T0)
    assert guard.wait("203.0.113.7", T0) is None
    guard.failed("203.0.113.7", T0)
    assert guard.wait("203.0.113.7", T0 + timedelta(minutes=1)) == timedelta(minutes=14)
    assert guard.wait("203.0.113.8", T0) is None
    assert guard.wait("203.0.113.7", T0 + timedelta(minutes=15)) is None


def test_failures_spread_beyond_the_window_do_not_add_up():
    guard = LoginGuard(GuardPolicy(client_failures=3, window=timedelta(minutes=10)))
    guard.failed("c", T0)
    guard.failed("c", T0 + timedelta(minutes=11))
    guard.failed("c", T0 + timedelta(minutes=12))
    assert guard.wait("c", T0 + timedelta(minutes=12)) is None


def test_memory_stays_bounded_however_many_clients_fail():
    guard = LoginGuard(GuardPolicy(max_entries=50))
    for i in range(500):
        guard.failed(f"c{i}", T0)
    assert len(guard._clients) <= 50
