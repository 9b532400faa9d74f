"""The daemon as a real process turns a scheduled SMS programme into a delivered blast,
and only once a second account has accepted the schedule that adds it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from broadcaster import operations as ops
from broadcaster.config import load_settings
from broadcaster.occurrence import Channel, Occurrence, Priority, SmsText
from broadcaster.sms.scheduled import SmsHandler
from broadcaster.store import dispatch
from broadcaster.store.dispatch import read_status
from broadcaster.testing.smsc import SmscThread, TestSmsc
from tests.account_fixtures import add_people
from tests.conftest import free_port
from tests.daemon_fixtures import broadcaster, clock_times, daemon_factory, now, wait_for
from tests.sms_fixtures import counts, reassemble, seed_subscribers, write_config

TEXT = "BCĐ huyện Định Hóa: hạn chế ra khỏi nhà, gọi 1900 9095 khi có triệu chứng."


@pytest.fixture
def daemons():
    yield from daemon_factory()


def _sms_schedule(times: str) -> str:
    return (
        '[[programme]]\nid = "urgent-sms"\nchannel = "sms"\npriority = "emergency"\n'
        f'areas = ["167"]\ncontent = {{ text = "{TEXT}" }}\n'
        f'[programme.levels."1"]\ntimes = {times}\n'
    )


def _report(engine: Engine) -> dict:
    row = read_status(engine)
    return json.loads(row.report) if row else {}


def _blast_ids(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT id FROM sms_blasts ORDER BY id"))]


def test_scheduled_sms_fires_once_and_every_subscriber_gets_it(
    tmp_path: Path, db_url: str, engine: Engine, daemons
) -> None:
    smsc = TestSmsc(free_port())
    config = write_config(tmp_path, db_url, {"viettel": smsc.port})
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "sms.toml").write_text(
        _sms_schedule(clock_times(now() + timedelta(seconds=8), 1)), encoding="utf-8"
    )
    port = free_port()
    with config.open("a", encoding="utf-8") as out:
        out.write(f'\n[http]\nbind = "127.0.0.1:{port}"\n[planner]\nschedules = "schedules"\n')
    numbers = seed_subscribers(engine, 30)
    people = add_people(db_url, tmp_path)
    ops.approve_schedules(ops.Context(load_settings(config), engine), people.approver)
    with SmscThread([smsc]):
        daemons(config).start()
        [blast] = wait_for(lambda: _blast_ids(engine), 20, "the scheduled blast")
        wait_for(lambda: counts(engine, blast).get("delivered") == 30, 30, "all 30 delivered")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    received = reassemble(smsc.stats.accepted)
    assert sorted(received) == sorted(numbers)
    assert all(bodies == [TEXT] for bodies in received.values())
    assert 'broadcaster_sms_messages{carrier="viettel",state="delivered"} 30.0' in metrics
    assert 'broadcaster_dispatch_occurrences{channel="sms",state="done"} 1.0' in metrics
    assert "broadcaster_scheduler_heartbeat_timestamp_seconds" in metrics
    assert 'broadcaster_carrier_bound{carrier="viettel"} 1.0' in metrics


def test_schedule_edit_adding_sms_sends_nothing_until_an_approver_accepts_it(
    tmp_path: Path, db_url: str, engine: Engine, daemons
) -> None:
    smsc = TestSmsc(free_port())
    config = write_config(tmp_path, db_url, {"viettel": smsc.port}, sms='min_interval = "10s"')
    folder = tmp_path / "schedules"
    folder.mkdir()
    (folder / "quiet.toml").write_text(
        '[[programme]]\nid = "noop"\nchannel = "task"\nareas = ["167"]\n'
        'content = { command = ["true"] }\n[programme.levels."1"]\ntimes = ["03:00"]\n',
        encoding="utf-8",
    )
    with config.open("a", encoding="utf-8") as out:
        out.write(
            f'\n[http]\nbind = "127.0.0.1:{free_port()}"\n[planner]\nschedules = "schedules"\n'
        )
    seed_subscribers(engine, 30)
    people = add_people(db_url, tmp_path)
    broadcaster(config, "schedule", "approve", "--yes", *people.as_approver)
    with SmscThread([smsc]):
        daemons(config).start()
        first = now() + timedelta(seconds=20)
        (folder / "sms.toml").write_text(
            _sms_schedule(clock_times(first, 2, step=timedelta(seconds=40))), encoding="utf-8"
        )
        broadcaster(config, "reload")
        wait_for(
            lambda: "urgent-sms" in _report(engine).get("awaiting_approval", []),
            15,
            "the daemon to hold the new programme back",
        )
        wait_for(lambda: now() > first + timedelta(seconds=3), 30, "the first send time to pass")
        assert _blast_ids(engine) == []  # written and reloaded, but not accepted: nothing sent
        assert smsc.stats.accepted == []
        refused = subprocess.run(
            [
                sys.executable,
                "-m",
                "broadcaster",
                "--config",
                str(config),
                "schedule",
                "approve",
                "--yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 1 and "approver" in refused.stderr  # the operator may not
        shown = broadcaster(config, "schedule", "approve", "--yes", *people.as_approver).stdout
        assert "added: urgent-sms" in shown
        [blast] = wait_for(lambda: _blast_ids(engine), 50, "the accepted programme's blast")
        wait_for(lambda: counts(engine, blast).get("delivered") == 30, 30, "all 30 delivered")
    with engine.connect() as conn:
        approved_by = conn.execute(text("SELECT approved_by_account FROM sms_blasts")).scalar_one()
    assert approved_by == people.approver.id


def test_a_scheduled_sms_fired_again_after_a_takeover_makes_no_second_blast(
    tmp_path: Path, db_url: str, engine: Engine, daemons
) -> None:
    """The dead leader made the blast and died before finishing the claim: the new
    leader fires the occurrence again and finds the blast already made."""
    smsc = TestSmsc(free_port())
    config = write_config(tmp_path, db_url, {"viettel": smsc.port})
    due = (now() - timedelta(seconds=20)).replace(microsecond=0)
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "sms.toml").write_text(
        _sms_schedule(clock_times(due, 1)), encoding="utf-8"
    )
    with config.open("a", encoding="utf-8") as out:
        out.write(
            f'\n[http]\nbind = "127.0.0.1:{free_port()}"\n[planner]\nschedules = "schedules"\n'
        )
    numbers = seed_subscribers(engine, 30)
    people = add_people(db_url, tmp_path)
    settings = load_settings(config)
    ops.approve_schedules(ops.Context(settings, engine), people.approver)
    occurrence = Occurrence(
        "urgent-sms", Channel.SMS, "167", due, Priority.EMERGENCY, SmsText(TEXT), None, "1"
    )
    [dead] = dispatch.claim(engine, [occurrence], now=due, node="dead-leader:1")
    assert SmsHandler(settings, engine, now)([occurrence]) == {}  # then it was killed
    [first] = _blast_ids(engine)
    with SmscThread([smsc]):
        daemon = daemons(config).start()
        [row] = wait_for(
            lambda: [r for r in dispatch.rows_for(engine) if r.state == "done"],
            20,
            "the occurrence fired again",
        )
        wait_for(lambda: counts(engine, first).get("delivered") == 30, 30, "all 30 delivered")
        assert daemon.terminate() == 0
    assert (row.id, row.attempts, row.previous_node) == (dead.id, 2, "dead-leader:1")
    assert _blast_ids(engine) == [first]
    received = reassemble(smsc.stats.accepted)
    assert sorted(received) == sorted(numbers)
    assert all(bodies == [TEXT] for bodies in received.values())  # each once
    assert "sms.scheduled_blast_exists" in daemon.stderr_path.read_text()
