"""Two daemons on one database: one schedules, the other stands by and takes over."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from contextlib import suppress
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from broadcaster.store import dispatch as store
from broadcaster.store.leader import SchedulerLock
from tests.conftest import free_port
from tests.daemon_fixtures import (
    DaemonProcess,
    broadcaster,
    clock_times,
    config_factory,
    daemon_factory,
    now,
    task_schedule,
    wait_for,
)


@pytest.fixture
def daemons():
    yield from daemon_factory()


def _scheduler_pid(engine: Engine) -> int | None:
    row = store.read_status(engine)
    return row.pid if row is not None and row.stopped_at is None else None


def _second_config(config: Path) -> Path:
    """The same database and schedules, with a node name and station API port of its own."""
    other = config.with_name("other.toml")
    other.write_text(
        'node = "standby"\n'
        + re.sub(
            r'(?m)^bind = ".*"$',
            f'bind = "127.0.0.1:{free_port()}"',
            config.read_text(encoding="utf-8"),
        ),
        encoding="utf-8",
    )
    return other


def _ticking_pair(
    tmp_path: Path, db_url: str, daemons, slots: int, standby_env: dict[str, str] | None = None
) -> tuple[Path, datetime, DaemonProcess, DaemonProcess]:
    """A leader and a standby on a task ticking every second from 3 s on, each tick
    appending its instant to a file; (file, first tick, leader, standby)."""
    fired = tmp_path / "fired.txt"
    first = now() + timedelta(seconds=3)
    command = f'echo "$BROADCASTER_AT" >> {fired}'
    config = config_factory(tmp_path, db_url)(
        {"tick.toml": task_schedule("tick", clock_times(first, slots), command)}
    )
    leader = daemons(config).start()
    standby = daemons(_second_config(config))
    standby.env = standby_env or {}
    return fired, first, leader, standby.start()


def _each_tick_fired_once(
    engine: Engine, fired: Path, first: datetime, slots: int, gone: DaemonProcess
) -> None:
    """Every tick up to the last ran, and none twice but one the old leader (`gone`) may
    have left claimed: run, its end not yet recorded. The new leader adopts that one and
    fires it again under the same occurrence (attempts 2, previous_node the old leader),
    at least once by design, for handlers to dedupe by BROADCASTER_OCCURRENCE."""
    last = (first + timedelta(seconds=slots - 1)).replace(microsecond=0)
    wait_for(
        lambda: any(r.at == last and r.state == "done" for r in store.rows_for(engine, "tick")),
        30,
        "the last tick",
    )
    assert gone.process is not None
    repeated = [at for at, n in Counter(fired.read_text().split()).items() if n > 1]
    assert len(repeated) <= 1, f"fired twice: {repeated}"
    rows = {r.at: r for r in store.rows_for(engine, "tick")}
    for at in repeated:
        row = rows[datetime.fromisoformat(at)]
        previous = f"{socket.gethostname()}:{gone.process.pid}"
        assert (row.attempts, row.previous_node) == (2, previous), f"fired twice: {at}"


def test_a_second_daemon_stands_by_and_takes_over_after_kill_9(
    engine: Engine, tmp_path: Path, db_url: str, daemons
) -> None:
    slots = 12
    fired, first, leader, standby = _ticking_pair(tmp_path, db_url, daemons, slots)
    assert _scheduler_pid(engine) == leader.process.pid
    wait_for(lambda: "daemon.standby" in standby.stderr_path.read_text(), 10, "the standby")
    wait_for(lambda: fired.exists() and len(fired.read_text().split()) >= 2, 20, "two ticks")
    leader.process.kill()
    leader.process.wait(5)
    wait_for(lambda: _scheduler_pid(engine) == standby.process.pid, 10, "the takeover")
    _each_tick_fired_once(engine, fired, first, slots, gone=leader)
    assert len(store.rows_for(engine, "tick")) == slots
    assert standby.terminate() == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_frozen_leader_is_fenced_and_the_standby_takes_over_and_fires_each_tick_once(
    engine: Engine, tmp_path: Path, db_url: str, daemons
) -> None:
    """SIGSTOP keeps the leader's process, socket and so its lock session alive, as a hung
    process or a network cut does: only fencing moves the scheduler. PostgreSQL only:
    SQLite's file lock is on one machine, where the systemd watchdog ends a hung daemon."""
    slots, fence_after = 24, 6
    fired = tmp_path / "fired.txt"
    first = now() + timedelta(seconds=3)
    command = f'echo "$BROADCASTER_AT" >> {fired}'
    config = config_factory(tmp_path, db_url)(
        {"tick.toml": task_schedule("tick", clock_times(first, slots), command)},
        planner=f'fence_after = "{fence_after}s"',
    )
    leader = daemons(config).start()
    standby = daemons(_second_config(config)).start()
    wait_for(lambda: "daemon.standby" in standby.stderr_path.read_text(), 10, "the standby")
    wait_for(lambda: fired.exists() and len(fired.read_text().split()) >= 2, 20, "two ticks")
    leader.process.send_signal(signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        wait_for(lambda: _scheduler_pid(engine) == standby.process.pid, 30, "the takeover")
        took = time.monotonic() - frozen
    finally:
        leader.process.send_signal(signal.SIGCONT)
    # Not before the leader was silent for most of fence_after (its last beat came up to
    # one heartbeat before the freeze), and soon after it.
    print(f"took over {took:.1f} s after the freeze")
    assert fence_after - 2.5 <= took <= fence_after + 5, took
    assert "daemon.fencing_leader" in standby.stderr_path.read_text()
    woke = leader.stderr_path.read_text()
    assert leader.process.wait(20) == 1, woke[-3000:]  # woke without its session: stood down
    assert "daemon.lock_lost" in leader.stderr_path.read_text()
    _each_tick_fired_once(engine, fired, first, slots, gone=leader)
    assert standby.terminate() == 0


def _claims_waiting(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM pg_locks"
                " WHERE NOT granted AND relation = 'dispatch'::regclass"
            )
        ).scalar_one()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_instant_due_but_unclaimed_when_the_leader_dies_is_fired_by_the_standby(
    engine: Engine, tmp_path: Path, db_url: str, daemons
) -> None:
    """The leader beats after the instant is due but dies before its claim commits.

    PostgreSQL only: a table lock there stops claims but not heartbeats, which
    SQLite's whole-database lock cannot do (the suite's command always has PostgreSQL).
    """
    fired = tmp_path / "fired.txt"
    command = f'echo "$BROADCASTER_AT" >> {fired}'
    config = config_factory(tmp_path, db_url)(
        {"tick.toml": task_schedule("tick", clock_times(now() + timedelta(hours=12), 1), command)}
    )
    leader = daemons(config).start()
    standby = daemons(_second_config(config)).start()
    wait_for(lambda: "daemon.standby" in standby.stderr_path.read_text(), 10, "the standby")
    with engine.connect() as blocker:  # claims wait on this lock; status rows do not
        blocker.execute(text("LOCK TABLE dispatch IN EXCLUSIVE MODE"))
        # arranged only now that both daemons run, so a slow start cannot pass the instant
        due = (now() + timedelta(seconds=8)).replace(microsecond=0)
        (tmp_path / "schedules" / "tick.toml").write_text(
            task_schedule("tick", clock_times(due, 1), command), encoding="utf-8"
        )
        leader.process.send_signal(signal.SIGHUP)
        wait_for(lambda: _claims_waiting(engine), 30, "the leader's claim to wait")
        wait_for(lambda: store.read_status(engine).heartbeat_at > due, 10, "a beat after it")
        leader.process.kill()
        leader.process.wait(5)
        time.sleep(0.2)
        blocker.rollback()
    wait_for(lambda: _scheduler_pid(engine) == standby.process.pid, 10, "the takeover")
    rows = wait_for(
        lambda: [r for r in store.rows_for(engine, "tick") if r.state == "done"],
        20,
        "the standby to fire the instant",
    )
    assert [r.at for r in rows] == [due]
    assert fired.read_text().split() == [due.isoformat()]
    assert standby.terminate() == 0


def test_a_task_running_when_the_leader_is_killed_is_fired_again_once_by_the_new_leader(
    engine: Engine, tmp_path: Path, db_url: str, daemons
) -> None:
    """Killed between claim and finish, the leader leaves the row `claimed`; the new
    leader adopts it, runs the task again with the same key, and records it done once."""
    started, finished = tmp_path / "started.txt", tmp_path / "finished.txt"
    command = (
        f'echo "$BROADCASTER_OCCURRENCE" >> {started}; sleep 3; '
        f'echo "$BROADCASTER_OCCURRENCE" >> {finished}'
    )
    config = config_factory(tmp_path, db_url)(
        {"slow.toml": task_schedule("slow", clock_times(now() + timedelta(hours=12), 1), command)}
    )
    leader = daemons(config).start()
    standby = daemons(_second_config(config)).start()
    wait_for(lambda: "daemon.standby" in standby.stderr_path.read_text(), 10, "the standby")
    due = (now() + timedelta(seconds=3)).replace(microsecond=0)
    (tmp_path / "schedules" / "slow.toml").write_text(
        task_schedule("slow", clock_times(due, 1), command), encoding="utf-8"
    )
    leader.process.send_signal(signal.SIGHUP)
    wait_for(lambda: started.exists(), 20, "the task to start")
    [claimed] = store.rows_for(engine, "slow")
    leader.process.kill()
    leader.process.wait(5)
    wait_for(lambda: _scheduler_pid(engine) == standby.process.pid, 10, "the takeover")
    [row] = wait_for(
        lambda: [r for r in store.rows_for(engine, "slow") if r.state == "done"],
        20,
        "the new leader to re-fire the task",
    )
    key = f"slow/167/{due.isoformat()}"
    assert claimed.state == "claimed"
    assert (row.id, row.at, row.attempts) == (claimed.id, due, 2)
    # Rows name the node (as `status` lists it) and its incarnation.
    assert (row.previous_node, row.node) == (claimed.node, f"standby:{standby.process.pid}")
    assert claimed.node == f"{socket.gethostname()}:{leader.process.pid}"  # unnamed: the host
    assert len(store.rows_for(engine, "slow")) == 1
    assert started.read_text().split() == [key, key]  # once per leader, same key to dedupe by
    takeover = json.loads(broadcaster(config, "status", "--format", "json").stdout)["takeover"]
    assert (takeover["refire"], takeover["missed"], takeover["from"]) == (1, 0, [claimed.node])
    assert "dispatch.takeover" in standby.stderr_path.read_text()
    assert standby.terminate() == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_lock_session_is_watched_by_tcp_on_both_ends_and_found_by_standbys(
    engine: Engine,
) -> None:
    """Cut off, a leader must learn it within seconds (its end gives up on unacknowledged
    data after 10 s) and the server must free the lock (its keepalives end the session
    after 5 + 2 × 3 s), not after TCP's default of hours."""
    lock = SchedulerLock(engine)
    assert lock.acquire()
    held = lock._connection
    assert held is not None
    try:
        sock = socket.socket(fileno=os.dup(held.pgconn.socket))
        with sock:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 5
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 2
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 10_000
        server = {
            name: held.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_user_timeout")
        }
        assert server == {
            "tcp_keepalives_idle": "5",
            "tcp_keepalives_interval": "2",
            "tcp_user_timeout": "10000",
        }
        assert SchedulerLock(engine).holder() == held.info.backend_pid
        assert not SchedulerLock(engine).acquire()
    finally:
        lock.release()
    assert SchedulerLock(engine).holder() is None


def _terminate_lock_session(engine: Engine) -> int:
    """End the session holding this schema's scheduler lock, as a PostgreSQL restart or an
    admin's pg_terminate_backend would; return how many sessions were ended."""
    lock = SchedulerLock(engine)
    holder = lock.holder()
    return int(holder is not None and lock.fence(holder))


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_leader_whose_lock_session_ends_stops_firing_and_exits_for_the_standby(
    engine: Engine, tmp_path: Path, db_url: str, daemons
) -> None:
    slots = 14
    fired, first, leader, standby = _ticking_pair(tmp_path, db_url, daemons, slots)
    wait_for(lambda: fired.exists() and len(fired.read_text().split()) >= 2, 20, "two ticks")
    assert _terminate_lock_session(engine) == 1
    assert leader.process.wait(10) == 1  # unclean: systemd restarts it, as a standby
    assert "daemon.lock_lost" in leader.stderr_path.read_text()
    wait_for(lambda: _scheduler_pid(engine) == standby.process.pid, 10, "the takeover")
    _each_tick_fired_once(engine, fired, first, slots, gone=leader)
    assert standby.terminate() == 0


def _forwarder(port: int) -> subprocess.Popen[bytes]:
    """socat in a session of its own on `port`, forwarding to PostgreSQL; killing its
    process group cuts every forwarded connection and refuses new ones, as a database
    restarting does."""
    process = subprocess.Popen(
        ["socat", f"TCP-LISTEN:{port},fork,reuseaddr,bind=127.0.0.1", "TCP:127.0.0.1:5432"],
        start_new_session=True,
    )

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 10, "socat to listen")
    return process


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_standby_outlives_a_database_that_refuses_it_and_takes_over_once_it_answers(
    engine: Engine, tmp_path: Path, db_url: str, daemons
) -> None:
    """A database restart cuts every session and refuses new ones for a while: the
    standby keeps standing by (saying why once) instead of dying with it."""
    slots, port = 24, free_port()
    forwarder = _forwarder(port)
    try:
        via = {"BROADCASTER_STORAGE_URL": db_url.replace("127.0.0.1:5432", f"127.0.0.1:{port}")}
        fired, first, leader, standby = _ticking_pair(tmp_path, db_url, daemons, slots, via)
        wait_for(lambda: fired.exists() and len(fired.read_text().split()) >= 2, 20, "two ticks")
        os.killpg(forwarder.pid, signal.SIGKILL)
        forwarder.wait(5)
        wait_for(
            lambda: "daemon.lock_unavailable" in standby.stderr_path.read_text(), 10, "the refusal"
        )
        time.sleep(3)  # three more asks for the lock against a refusing database
        assert standby.process.poll() is None, standby.stderr_path.read_text()[-2000:]
        assert standby.stderr_path.read_text().count("daemon.lock_unavailable") == 1
        forwarder = _forwarder(port)
        wait_for(
            lambda: "daemon.lock_available" in standby.stderr_path.read_text(), 10, "the answer"
        )
        leader.process.kill()
        leader.process.wait(5)
        wait_for(lambda: _scheduler_pid(engine) == standby.process.pid, 10, "the takeover")
        _each_tick_fired_once(engine, fired, first, slots, gone=leader)
        assert standby.terminate() == 0
    finally:
        with suppress(ProcessLookupError):  # killed already when the test failed mid-outage
            os.killpg(forwarder.pid, signal.SIGKILL)
        forwarder.wait(5)
