"""Changes are heard at once on PostgreSQL: committed writes NOTIFY, the listener wakes
its subscribers, and survives losing its connection (store/changes.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import structlog
from sqlalchemy import Engine, text

from broadcaster.store import dispatch as status_store
from broadcaster.store.changes import CHANNEL_PREFIX, ChangeListener, Topic
from broadcaster.store.levels import set_level
from tests.test_store import LADDERS, NOW, REGISTRY

on_postgresql = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


class Woken:
    """The topics a listener woke us for, as events a test can await."""

    def __init__(self, listener: ChangeListener) -> None:
        self.events = {topic: threading.Event() for topic in Topic}
        for topic, event in self.events.items():
            listener.subscribe([topic], event.set)

    def clear(self) -> None:
        for event in self.events.values():
            event.clear()

    def within(self, seconds: float) -> set[Topic]:
        time.sleep(seconds)
        return {topic for topic, event in self.events.items() if event.is_set()}


@pytest.fixture
def listening(engine: Engine) -> Iterator[tuple[ChangeListener, Woken]]:
    listener = ChangeListener(engine)
    woken = Woken(listener)
    listener.start()
    assert woken.events[Topic.LEVELS].wait(10), "the listener never connected"
    woken.clear()  # the wake every subscriber gets on connecting
    yield listener, woken
    listener.stop()


def _listener_pids(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        return list(
            conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE query = :q"),
                {"q": f'LISTEN "{CHANNEL_PREFIX}{schema}"'},
            ).scalars()
        )


def _set_level(engine: Engine, level: str = "5.2") -> None:
    set_level(engine, REGISTRY, LADDERS, area="167", level=level, by="op", reason="r", now=NOW)


@on_postgresql
def test_a_committed_level_change_wakes_only_level_subscribers_within_a_second(
    engine: Engine, listening: tuple[ChangeListener, Woken]
) -> None:
    _, woken = listening
    began = time.monotonic()
    _set_level(engine)
    assert woken.events[Topic.LEVELS].wait(1.0)
    assert time.monotonic() - began < 1.0
    assert woken.within(0.2) == {Topic.LEVELS}


@on_postgresql
def test_a_reload_request_wakes_schedule_subscribers(
    engine: Engine, listening: tuple[ChangeListener, Woken]
) -> None:
    _, woken = listening
    status_store.write_status(engine, now=NOW, started=True, node="n", pid=1)
    assert woken.within(0.3) == set(), "a heartbeat is not a change"
    status_store.request_reload(engine)
    assert woken.events[Topic.SCHEDULES].wait(1.0)


@on_postgresql
def test_a_rolled_back_change_wakes_nobody(
    engine: Engine, listening: tuple[ChangeListener, Woken]
) -> None:
    _, woken = listening
    with engine.connect() as conn:
        conn.execute(
            text(
                "INSERT INTO level_changes (area, level, ladder, at, by, reason) "
                "VALUES ('167', '5.2', 'disease', now(), 'op', 'r')"
            )
        )
        conn.rollback()
    assert woken.within(0.5) == set()


@on_postgresql
def test_a_listener_whose_connection_is_killed_reconnects_and_wakes_everyone(
    engine: Engine, listening: tuple[ChangeListener, Woken]
) -> None:
    _, woken = listening
    with structlog.testing.capture_logs() as logs:
        (pid,) = _listener_pids(engine)
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        # a change made while it is away is not lost: the reconnect wakes every subscriber
        _set_level(engine)
        assert woken.events[Topic.NOTICES].wait(5), "no wake after reconnecting"
        assert woken.events[Topic.LEVELS].is_set()
    lost = [e for e in logs if e["event"] == "changes.listener_lost"]
    assert lost and "terminat" in lost[0]["error"], logs
    woken.clear()
    _set_level(engine, "5.1")
    assert woken.events[Topic.LEVELS].wait(1.0)


def test_on_sqlite_nothing_listens_and_polling_is_all(tmp_path) -> None:
    from broadcaster.store.db import make_engine

    listener = ChangeListener(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    listener.start()
    assert not listener.enabled
    assert "changes" not in {t.name for t in threading.enumerate()}
    listener.stop()


@on_postgresql
def test_a_notice_written_elsewhere_republishes_the_playlists_at_once(
    engine: Engine, tmp_path, db_url: str, normalised_store
) -> None:
    """The playlist service polls every 30 s here: only the notification is in time."""
    from broadcaster.audio.service import PlaylistService
    from broadcaster.config import load_settings
    from tests.audio_fixtures import audio_config, seed_store
    from tests.conftest import free_port, write_config

    settings = load_settings(audio_config(write_config(tmp_path, db_url), free_port()))
    seed_store(normalised_store, tmp_path / "data")  # clips normalised once per session
    service = PlaylistService(settings, engine, poll_seconds=30)
    listener = ChangeListener(engine)
    listener.subscribe([Topic.NOTICES], service.wake)
    with structlog.testing.capture_logs() as logs:
        service.start()
        listener.start()
        service.plan_changed([], [])

        def published() -> int:
            return sum(e["event"] == "audio.plan_published" for e in logs)

        deadline = time.monotonic() + 20
        while published() < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert published() == 1, logs
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audio_notices (areas, clip_file, clip_sha256, duration, state, "
                    "created_by, created_at) VALUES ('[\"167\"]', 'n.wav', :sha, 5, 'pending', "
                    "'op', now())"
                ),
                {"sha": "0" * 64},
            )
        committed = time.monotonic()
        while published() < 2 and time.monotonic() - committed < 1.0:
            time.sleep(0.02)
        republished = published() == 2  # before stopping: a stop wakes the service too
        listener.stop()
        service.stop()
    assert republished, "not republished within 1 s of the notice"
