"""/metrics reads counts the database keeps, /healthz tells when the service cannot work."""

from __future__ import annotations

import os
import random
import signal
import socket
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from broadcaster.audio.publish import Publisher
from broadcaster.audio.settings import AudioSettings
from broadcaster.audio.tokens import Tokens
from broadcaster.store.db import make_engine
from broadcaster.web import make_app
from tests.conftest import STORAGE_AGNOSTIC, free_port
from tests.daemon_fixtures import (
    broadcaster,
    config_factory,
    daemon_factory,
    node_env,
    task_schedule,
    wait_for,
)

STATES = ["queued", "sending", "submitted", "delivered", "failed", "expired", "cancelled"]
CARRIERS = ["viettel", "vinaphone", "mobifone"]
NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)


def counters(engine: Engine, table: str, key: str) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {key}, state, n FROM {table} WHERE n <> 0"))
        return {(k, s): n for k, s, n in rows}


def scanned(engine: Engine, table: str, key: str) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {key}, state, count(*) FROM {table} GROUP BY 1, 2"))
        return {(k, s): n for k, s, n in rows}


def test_message_counters_match_a_full_count_after_any_mix_of_changes(engine: Engine) -> None:
    rng = random.Random(8)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sms_blasts (id, text, unaccented, encoding, parts, priority, exercise,"
                " areas, state, created_at, created_by) VALUES (1, 't', false, 'gsm', 1, 'routine',"
                " false, '[]', 'approved', :now, 'op')"
            ),
            {"now": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO sms_messages (blast_id, msisdn, carrier, rank, state, queued_at,"
                " attempts) VALUES "
                + ", ".join(
                    f"(1, '0912{i:06d}', '{rng.choice(CARRIERS)}', 1, 'queued', :now, 0)"
                    for i in range(500)
                )
            ),
            {"now": NOW},
        )
    for _ in range(60):
        with engine.begin() as conn:
            low, high = sorted(rng.sample(range(1, 501), 2))
            move = rng.random()
            if move < 0.6:  # set-based moves, as the outbox makes them
                conn.execute(
                    text("UPDATE sms_messages SET state = :s WHERE id BETWEEN :a AND :b"),
                    {"s": rng.choice(STATES), "a": low, "b": high},
                )
            elif move < 0.75:  # a lease renewal touches no counted column
                conn.execute(
                    text(
                        "UPDATE sms_messages SET attempts = attempts + 1 WHERE id BETWEEN :a AND :b"
                    ),
                    {"a": low, "b": high},
                )
            elif move < 0.9:
                conn.execute(
                    text("UPDATE sms_messages SET carrier = :c WHERE id = :a"),
                    {"c": rng.choice(CARRIERS), "a": low},
                )
            else:
                conn.execute(text("DELETE FROM sms_messages WHERE id = :a"), {"a": low})
    assert counters(engine, "sms_counters", "carrier") == scanned(engine, "sms_messages", "carrier")


def test_dispatch_counters_follow_claims_and_their_ends(engine: Engine) -> None:
    with engine.begin() as conn:
        for i, channel in enumerate(["sms", "loudspeaker", "loudspeaker"]):
            conn.execute(
                text(
                    "INSERT INTO dispatch (programme, area, at, channel, state, claimed_at, node)"
                    " VALUES (:p, '167', :at, :c, 'claimed', :at, 'n')"
                ),
                {"p": f"p{i}", "at": NOW, "c": channel},
            )
        conn.execute(text("UPDATE dispatch SET state = 'done' WHERE channel = 'loudspeaker'"))
    assert counters(engine, "dispatch_counters", "channel") == {
        ("sms", "claimed"): 1,
        ("loudspeaker", "done"): 2,
    }


def _app(tmp_path: Path, engine: Engine):
    published = tmp_path / "publish"
    published.mkdir()
    pub = Publisher(published, "http://127.0.0.1", UTC, Tokens(b"x" * 32), AudioSettings(), engine)
    return make_app(pub, frozenset(), engine=engine, clock=lambda: datetime.now(UTC))


def test_health_fails_with_the_reason_when_the_database_is_unreachable(tmp_path: Path) -> None:
    engine = make_engine(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    response = TestClient(_app(tmp_path, engine)).get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail" and body["database"] == "unreachable"
    assert body["reasons"][0].startswith("database unreachable: OperationalError")


@STORAGE_AGNOSTIC
def test_metrics_show_build_process_and_no_binds_without_senders(served) -> None:
    """Binds are per process, so the witness is a fresh `broadcaster serve`, which runs
    no sender: the test process itself holds whatever binds earlier tests' senders made."""
    _, base = served
    text_ = httpx.get(f"{base}/metrics").text
    assert 'broadcaster_build_info{version="' in text_
    assert "process_cpu_seconds_total" in text_
    assert "broadcaster_carrier_bound{" not in text_


@pytest.fixture
def daemons():
    yield from daemon_factory()


def test_health_goes_503_on_the_standby_when_the_scheduler_stops_heartbeating(
    tmp_path: Path, daemons
) -> None:
    schedule = {"t.toml": task_schedule("t", '["03:00"]', "true")}
    config = config_factory(tmp_path, f"sqlite:///{tmp_path / 'data' / 'broadcaster.db'}")(schedule)
    broadcaster(config, "db", "upgrade")
    leader = daemons(config).start()
    standby = daemons(config)
    port = free_port()
    standby.env = node_env("standby", port)
    standby.start()
    health = f"http://127.0.0.1:{port}/healthz"
    ok = wait_for(
        lambda: (r := httpx.get(health)).status_code == 200 and r,
        30,
        "the standby to report a healthy scheduler (once published)",
    )
    assert ok.json()["role"] == "standby"
    assert ok.json()["scheduler"]["node"] == f"{socket.gethostname()}:{leader.process.pid}"
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    beat = next(
        line
        for line in metrics.splitlines()
        if line.startswith("broadcaster_scheduler_heartbeat_timestamp_seconds ")
    )
    assert abs(float(beat.split()[1]) - datetime.now(UTC).timestamp()) < 15

    os.kill(leader.process.pid, signal.SIGSTOP)  # alive, holding the lock, not beating
    try:
        failed = wait_for(
            lambda: (r := httpx.get(health)).status_code == 503 and r,
            30,
            "the standby to report the stale heartbeat",
        )
    finally:
        os.kill(leader.process.pid, signal.SIGCONT)
    body = failed.json()
    assert body["status"] == "fail"
    assert any(r.startswith("scheduler heartbeat stale") for r in body["reasons"]), body
