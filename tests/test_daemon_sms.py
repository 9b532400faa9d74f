"""The daemon as a real process turns a scheduled SMS programme into a delivered blast."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from broadcaster.testing.smsc import SmscThread, TestSmsc
from tests.conftest import free_port
from tests.daemon_fixtures import clock_times, daemon_factory, now, wait_for
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
        _sms_schedule(clock_times(now() + timedelta(seconds=4), 1)), encoding="utf-8"
    )
    port = free_port()
    with config.open("a", encoding="utf-8") as out:
        out.write(f'\n[http]\nbind = "127.0.0.1:{port}"\n[planner]\nschedules = "schedules"\n')
    numbers = seed_subscribers(engine, 30)
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
