"""Two daemons on one database: one schedules, the other stands by and takes over."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broadcaster.store import dispatch as store
from tests.conftest import free_port
from tests.daemon_fixtures import (
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


def test_a_second_daemon_stands_by_and_takes_over_after_kill_9(
    engine: Engine, tmp_path: Path, db_url: str, daemons
) -> None:
    fired = tmp_path / "fired.txt"
    slots = 12
    first = now() + timedelta(seconds=3)
    command = f'echo "$BROADCASTER_AT" >> {fired}'
    config = config_factory(tmp_path, db_url)(
        {"tick.toml": task_schedule("tick", clock_times(first, slots), command)}
    )
    other = config.with_name("other.toml")  # same database, its own station API port
    other.write_text(
        re.sub(
            r'(?m)^bind = ".*"$',
            f'bind = "127.0.0.1:{free_port()}"',
            config.read_text(encoding="utf-8"),
        ),
        encoding="utf-8",
    )
    leader = daemons(config).start()
    standby = daemons(other).start()
    assert _scheduler_pid(engine) == leader.process.pid
    wait_for(lambda: "daemon.standby" in standby.stderr_path.read_text(), 10, "the standby")
    wait_for(lambda: fired.exists() and len(fired.read_text().split()) >= 2, 20, "two ticks")
    leader.process.kill()
    leader.process.wait(5)
    wait_for(lambda: _scheduler_pid(engine) == standby.process.pid, 10, "the takeover")
    last = (first + timedelta(seconds=slots - 1)).replace(microsecond=0)
    wait_for(
        lambda: any(r.at == last and r.state == "done" for r in store.rows_for(engine, "tick")),
        30,
        "the last tick",
    )
    lines = fired.read_text().split()
    assert len(lines) == len(set(lines)), f"fired twice: {lines}"
    assert len(store.rows_for(engine, "tick")) == slots
    assert standby.terminate() == 0
