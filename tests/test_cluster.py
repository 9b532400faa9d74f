"""Three `broadcaster run` nodes on one PostgreSQL: kill -9 the leader mid-blast, mid-day.

The day is compressed, not sped up: a task programme fires at each of the
district's 24 communes every 2 s (360 occurrences in 30 s; the sample
district's day at level 5.1 has 122), beside the sample schedules that give the
stations their published days. Every clock stays the real one, so what is
tested is what runs: APScheduler's timing, leases, heartbeats, grace periods
and the takeover all measure the same seconds. A sped-up clock would have to
reach APScheduler, the planner, the senders' leases, PostgreSQL's heartbeats
and quiet hours alike, and would shrink the grace periods to fractions of the
takeover time it is meant to test.

The leader is killed just after an instant's occurrences are done, between
two instants: a kill between an occurrence's claim and its end leaves it
`claimed` (the dispatch table fires at most once; README, "Several
daemons"), which is not what this test measures.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from sqlalchemy import Engine

from broadcaster import operations as ops
from broadcaster.audio.tokens import Tokens
from broadcaster.config import load_settings
from broadcaster.sms.states import Priority
from broadcaster.store import dispatch as store
from broadcaster.testing.smsc import SmscPolicy, SmscThread, TestSmsc
from tests.account_fixtures import People, add_people
from tests.audio_fixtures import SECRET, audio_config
from tests.cluster_fixtures import Node, cluster_factory, seed_subscribers_by_carrier
from tests.conftest import REPO, free_port
from tests.daemon_fixtures import HCM, config_factory, now, wait_for
from tests.sms_fixtures import counts

CARRIERS = {"viettel": "096", "vinaphone": "091", "mobifone": "090"}
PER_CARRIER = 10_000  # 30,000 recipients in all
WINDOW = 50
TEXT = "BCD huyen Dinh Hoa: han che ra khoi nha, goi 1900 9095 khi co trieu chung."
INSTANTS, STEP = 15, timedelta(seconds=2)
STATION = "linh-thong"
SAMPLES = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "schedules").glob("*.toml")}


@pytest.fixture
def cluster(tmp_path: Path, engine: Engine, normalised_store: Path):
    yield from cluster_factory(tmp_path, engine, normalised_store)


class Answer(NamedTuple):
    status: int
    body: bytes


def _station_day(node: Node, timeout: float) -> Answer:
    """What a station polling `node` gets for today's day, once it is served (or the
    last answer when it never is within `timeout`)."""
    token = Tokens(SECRET.encode()).for_station(STATION)
    today = now().astimezone(HCM).date().isoformat()
    url = f"{node.base}/stations/{STATION}/{today}.json"
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(url, params={"token": token}, timeout=5)
        if response.status_code == 200 or time.monotonic() > deadline:
            return Answer(response.status_code, response.content)
        time.sleep(0.2)


def _tick_schedule(first, fired: Path) -> str:
    times = ", ".join(f'"{(first + i * STEP).astimezone(HCM):%H:%M:%S}"' for i in range(INSTANTS))
    command = json.dumps(["sh", "-c", f'echo "$BROADCASTER_AREA $BROADCASTER_AT" >> {fired}'])
    return (
        '[[programme]]\nid = "tick"\nchannel = "task"\nareas = ["167/communes"]\n'
        f"content = {{ command = {command} }}\n"
        f'[programme.levels."5.1"]\ntimes = [{times}]\n'
    )


def _send_blast(config: Path, engine: Engine, people: People) -> int:
    """Draft as the operator and approve as the approver, through the operations
    layer the CLI, API and console share (in-process: two CLI starts cost ~10 s
    on a loaded test machine)."""
    ctx = ops.Context(load_settings(config), engine)
    draft = ops.draft_blast(
        ctx, people.operator, areas=["167"], text=TEXT, priority=Priority.URGENT
    )
    ops.approve_blast(ctx, people.approver, draft.id)
    return draft.id


def _ticks_done(engine: Engine) -> int:
    return sum(r.state == "done" for r in store.rows_for(engine, "tick"))


def _accepted(smscs: dict[str, TestSmsc]) -> int:
    return sum(len(s.stats.accepted) for s in smscs.values())


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_killing_the_leader_of_three_nodes_mid_blast_loses_nothing_and_fires_nothing_twice(
    tmp_path: Path, db_url: str, engine: Engine, cluster
) -> None:
    began = time.monotonic()
    smscs = {c: TestSmsc(free_port(), SmscPolicy(delay=0.02)) for c in CARRIERS}
    config = audio_config(
        config_factory(tmp_path, db_url)(SAMPLES), free_port(), render_slots=False
    )
    communes = [a.code for a in load_settings(config).registry().communes_under("167")]
    numbers = seed_subscribers_by_carrier(engine, CARRIERS, PER_CARRIER, communes)
    people = add_people(db_url, tmp_path)
    env = {"BROADCASTER_SMS_LEASE_SECONDS": "8"}
    for carrier, smsc in smscs.items():
        key = f"BROADCASTER_CARRIERS_{carrier.upper()}_"
        env |= {key + "PORT": str(smsc.port), key + "RATE": "2000", key + "WINDOW": str(WINDOW)}
    fired = tmp_path / "fired.txt"
    with SmscThread(list(smscs.values())):
        nodes = cluster(config, 3, env).start()
        first, peer, _ = nodes.nodes
        assert nodes.leader() is first
        before = _station_day(peer, 15)
        start = (now() + timedelta(seconds=3)).replace(microsecond=0)
        (tmp_path / "schedules" / "tick.toml").write_text(
            _tick_schedule(start, fired), encoding="utf-8"
        )
        first.daemon.process.send_signal(signal.SIGHUP)
        blast = _send_blast(config, engine, people)
        total = PER_CARRIER * len(CARRIERS)
        wait_for(lambda: _accepted(smscs) >= total // 3, 60, "a third of the blast sent")
        done = _ticks_done(engine)
        assert done < len(communes) * INSTANTS, "the day ended before the kill"
        wait_for(  # the instant's rows end in one commit: killed now, none is half-fired
            lambda: (n := _ticks_done(engine)) > done and n % len(communes) == 0,
            10,
            "the next instant done",
        )
        killed = nodes.kill(first)
        sent_at_kill = _accepted(smscs)
        leader, took_over = nodes.await_new_leader(first, 10)
        last = start + (INSTANTS - 1) * STEP
        wait_for(
            lambda: any(r.at == last and r.state == "done" for r in store.rows_for(engine, "tick")),
            60,
            "the last instant of the day",
        )
        wait_for(
            lambda: counts(engine, blast).get("delivered") == total,
            60,
            "every message delivered",
            seen=lambda: counts(engine, blast),
        )
        after = _station_day(peer, 20)

    takeover = took_over - killed
    rows = store.rows_for(engine, "tick")
    assert Counter(r.state for r in rows) == {"done": len(communes) * INSTANTS}
    lines = fired.read_text().splitlines()
    assert len(lines) == len(set(lines)) == len(communes) * INSTANTS, "fired twice or never"
    assert counts(engine, blast) == {"delivered": total}
    for carrier, smsc in smscs.items():
        sent = Counter(s.destination_addr for s in smsc.stats.accepted)
        assert set(sent) == set(numbers[carrier])
        duplicates = sum(sent.values()) - len(sent)
        assert duplicates <= WINDOW, f"{carrier}: {duplicates} duplicates"
    print(
        f"\ncluster: takeover {takeover:.2f} s by {leader.name}; killed at {sent_at_kill} sent; "
        f"duplicates {_accepted(smscs) - total}; {time.monotonic() - began:.1f} s in all"
    )
    assert takeover <= 10
    assert before.status == 200, f"{peer.name} served no day before the kill: {before.status}"
    assert after == before
    assert len({r.node for r in rows}) == 2  # the first leader and its successor shared the day
