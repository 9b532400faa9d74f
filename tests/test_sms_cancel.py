"""Stop means stop: a cancel committed mid blast ends its submits on the wire at once."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from sqlalchemy import text

from broadcaster.sms import blast as blasts
from broadcaster.sms.encoding import read_segment
from broadcaster.sms.link import utcnow
from broadcaster.testing.smsc import SmscThread, TestSmsc, free_port
from tests.sms_fixtures import THANH_HOA, seed_subscribers, settings_for, start_blast, write_config
from tests.test_sms_sending import send_all

# The sender checks for a cancel before each write; a part written just before the
# commit may reach the SMSC's clock a little after it (one part at 20 msg/s is 50 ms).
ALLOWANCE = 0.25


@pytest.mark.parametrize("nodes", [1, 2])
def test_cancel_mid_blast_at_20_msg_s_stops_every_submit_after_the_commit(
    tmp_path, db_url, engine, nodes
):
    """With two nodes, two senders share the carrier's queue, as two daemons would."""
    smsc = TestSmsc(free_port())
    config = write_config(tmp_path, db_url, {"viettel": smsc.port}, rate=20, window=10)
    settings = settings_for(config)
    seed_subscribers(engine, 1000)
    blast_id = start_blast(engine, settings, THANH_HOA)  # three parts a message
    with SmscThread([smsc]):
        runners = [
            threading.Thread(target=send_all, args=(settings, engine, 5.0)) for _ in range(nodes)
        ]
        for runner in runners:
            runner.start()
        assert smsc.wait_for(lambda st: len(st.accepted) >= 100, 60)
        before = time.time()
        blasts.cancel(engine, blast_id, by="binh", now=utcnow())
        committed = time.time()
        for runner in runners:
            runner.join(60)
            assert not runner.is_alive()
    accepted = smsc.stats.accepted
    late = [s.at - committed for s in accepted if s.at > committed + ALLOWANCE]
    assert late == []
    assert sum(s.at > before for s in accepted) <= 2 * nodes

    report = blasts.status(engine, blast_id)
    states = ("queued", "sending", "submitted", "delivered", "failed", "expired", "cancelled")
    assert sum(int(report[s]) for s in states) == report["total"] == 1000
    assert report["queued"] == report["sending"] == 0
    assert report["cancelled"] > 900

    parts_by_message: dict[tuple[str, int | None], set[int]] = defaultdict(set)
    for s in accepted:
        segment = read_segment(s.esm_class, s.short_message)
        parts_by_message[(s.destination_addr, segment.ref)].add(segment.seq)
    whole = sum(len(parts) == 3 for parts in parts_by_message.values())
    partial = len(parts_by_message) - whole
    assert report["delivered"] + report["submitted"] == whole
    assert report["partly_sent"] == partial
    with engine.connect() as conn:
        reasons = set(
            conn.execute(
                text("SELECT reason FROM sms_messages WHERE state = 'cancelled'")
            ).scalars()
        )
    assert "blast cancelled by binh" in reasons
