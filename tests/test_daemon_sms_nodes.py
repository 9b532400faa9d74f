"""SMS across nodes, with real `broadcaster run` processes on one PostgreSQL database and
the real test SMSC: a carrier's rate is a total over its nodes, and a killed node's
messages are taken over by a peer once their leases run out."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from broadcaster.sms.link import utcnow
from broadcaster.testing.smsc import SmscPolicy, SmscThread, TestSmsc
from tests.conftest import REPO, free_port
from tests.daemon_fixtures import (
    DaemonProcess,
    broadcaster,
    clock_times,
    daemon_factory,
    node_env,
    now,
    task_schedule,
    wait_for,
)
from tests.sms_fixtures import counts, seed_subscribers, settings_for, start_blast, write_config

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture
def daemons():
    yield from daemon_factory()


def sms_config(tmp_path: Path, db_url: str, port: int, rate: float, window: int, sms: str) -> Path:
    (tmp_path / "schedules").mkdir()
    far = clock_times(now() + timedelta(hours=12), 1)  # the daemons need a schedule; it waits
    (tmp_path / "schedules" / "quiet.toml").write_text(
        task_schedule("quiet", far, "true", level="1"), encoding="utf-8"
    )
    return write_config(tmp_path, db_url, {"viettel": port}, rate=rate, window=window, sms=sms)


def start_node(daemons: Any, config: Path, name: str, *, own_account: bool) -> DaemonProcess:
    """A node named `name`; with `own_account` its bind's system_id says so too, so the
    SMSC's record tells which node sent each message (but holds the receipts of a
    killed node's account for its next bind, as a carrier would)."""
    daemon: DaemonProcess = daemons(config)
    daemon.env = node_env(name, free_port())
    if own_account:
        daemon.env["BROADCASTER_CARRIERS_VIETTEL_SYSTEM_ID"] = name
    return daemon.start()


def nodes_shown(config: Path) -> dict[str, dict[str, Any]]:
    status = json.loads(broadcaster(config, "status", "--format", "json").stdout)
    return {node["name"]: node for node in status["nodes"]}


def sharing(daemon: DaemonProcess, nodes: int) -> bool:
    return f"nodes={nodes}" in daemon.stderr_path.read_text(errors="replace")


def approve_blast(engine: Engine, config: Path) -> int:
    return start_blast(
        engine, settings_for(config), "Thong bao khan: nghi hoc ngay mai.", now=utcnow()
    )


def rated_carrier(
    tmp_path: Path, db_url: str, engine: Engine, rate: float, window: int, messages: int
) -> tuple[TestSmsc, Path]:
    """A test SMSC answering in 20 ms, a config with its carrier at `rate`, and as many
    subscribers as `messages`."""
    smsc = TestSmsc(free_port(), SmscPolicy(delay=0.02))
    config = sms_config(tmp_path, db_url, smsc.port, rate, window=window, sms="")
    seed_subscribers(engine, messages)
    return smsc, config


def test_three_nodes_on_one_carrier_send_at_most_its_rate_summed_in_every_second(
    tmp_path: Path, db_url: str, engine: Engine, daemons: Any
) -> None:
    rate, messages = 300, 3000
    smsc, config = rated_carrier(tmp_path, db_url, engine, rate, window=60, messages=messages)
    names = ["n1", "n2", "n3"]
    with SmscThread([smsc]):
        nodes = [start_node(daemons, config, name, own_account=True) for name in names]
        for node in nodes:
            wait_for(lambda node=node: sharing(node, 3), 20, "each node to take a third")
        wait_for(
            lambda: all(n["binds"] == {"viettel": True} for n in nodes_shown(config).values()),
            10,
            "three bound nodes",
        )
        blast = approve_blast(engine, config)
        wait_for(lambda: counts(engine, blast).get("delivered") == messages, 60, "all delivered")
    accepted = smsc.stats.accepted
    assert len(accepted) == messages
    per_second = Counter(math.floor(s.at) for s in accepted)
    per_node_second = Counter((s.system_id, math.floor(s.at)) for s in accepted)
    by_node = Counter(s.system_id for s in accepted)
    print("per second:", sorted(per_second.items()), "per node:", dict(by_node))
    assert max(per_second.values()) <= rate
    assert set(by_node) == set(names)  # every node sent its share…
    assert max(per_node_second.values()) <= rate / 3
    assert max(per_second.values()) > 2 * rate / 3  # …at once: over two nodes' shares summed
    for node in nodes:  # nor did their senders deadlock on the carrier's counter rows
        assert "sms.store_unavailable" not in node.stderr_path.read_text(errors="replace")


def test_sms_send_beside_a_daemon_is_a_node_and_takes_its_share_of_the_rate(
    tmp_path: Path, db_url: str, engine: Engine, daemons: Any
) -> None:
    rate, messages = 200, 3000
    smsc, config = rated_carrier(tmp_path, db_url, engine, rate, window=40, messages=messages)
    log = tmp_path / "sms-send.log"
    with SmscThread([smsc]):
        daemon = start_node(daemons, config, "n1", own_account=True)
        wait_for(lambda: nodes_shown(config)["n1"]["binds"] == {"viettel": True}, 20, "n1 bound")
        blast = approve_blast(engine, config)
        assert smsc.wait_for(lambda st: len(st.accepted) >= 100, 30)
        env = {**os.environ, "BROADCASTER_NODE": "n1"}
        env["BROADCASTER_CARRIERS_VIETTEL_SYSTEM_ID"] = "send"
        with log.open("wb") as err:
            send = subprocess.Popen(
                [sys.executable, "-m", "broadcaster", "--config", str(config)]
                + ["sms", "send", "--receipt-wait", "5"],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            try:
                seen = wait_for(
                    lambda: (
                        nodes_shown(config).get("n1/sms-send", {}).get("binds") == {"viettel": True}
                        and nodes_shown(config)["n1/sms-send"]
                    ),
                    20,
                    "sms send listed as a bound node",
                )
                wait_for(lambda: sharing(daemon, 2), 10, "the daemon to leave it half")
                assert send.wait(90) == 0, log.read_text(errors="replace")[-2000:]
            finally:
                send.kill()
        wait_for(lambda: counts(engine, blast).get("delivered") == messages, 60, "all delivered")
    assert seen["role"] == "sender" and seen["http"] is None
    assert nodes_shown(config)["n1/sms-send"]["role"] == "stopped"  # peers stop counting it
    accepted = smsc.stats.accepted
    per_second = Counter(math.floor(s.at) for s in accepted)
    by_sender = Counter(s.system_id for s in accepted)
    print("per second:", sorted(per_second.items()), "by sender:", dict(by_sender))
    assert len({s.destination_addr for s in accepted}) == messages
    assert by_sender["send"] > rate  # it sent several seconds' worth…
    assert max(per_second.values()) <= rate  # …and the two together kept the contract


def test_a_killed_nodes_messages_are_sent_by_its_peer_after_their_lease(
    tmp_path: Path, db_url: str, engine: Engine, daemons: Any
) -> None:
    messages, window = 600, 20
    smsc = TestSmsc(free_port(), SmscPolicy(delay=0.02))
    config = sms_config(tmp_path, db_url, smsc.port, 100, window, sms="lease_seconds = 3")
    seed_subscribers(engine, messages)
    with SmscThread([smsc]):
        killed = start_node(daemons, config, "n1", own_account=False)
        peer = start_node(daemons, config, "n2", own_account=False)
        for node in (killed, peer):
            wait_for(lambda node=node: sharing(node, 2), 20, "each node to take half")
        blast = approve_blast(engine, config)
        assert smsc.wait_for(lambda st: len(st.accepted) >= 100, 30)
        killed.process.kill()  # kill -9 with messages claimed under its lease
        killed.process.wait(5)
        wait_for(lambda: nodes_shown(config)["n1"]["role"] == "lost", 15, "n1 shown lost")
        # A receipt the SMSC meant for the killed bind may wait for that bind to come
        # back, so its message may stay `submitted`; none may stay queued or sending.
        wait_for(lambda: set(counts(engine, blast)) <= {"submitted", "delivered"}, 60, "all sent")
    assert len({s.destination_addr for s in smsc.stats.accepted}) == messages
    with engine.connect() as conn:
        retaken = conn.execute(
            text("SELECT count(*) FROM sms_messages WHERE blast_id = :b AND attempts > 1"),
            {"b": blast},
        ).scalar_one()
    assert retaken > 0  # n1's claimed messages went back to the queue and n2 sent them
    sent_twice = len(smsc.stats.accepted) - messages
    assert 0 <= sent_twice <= window // 2  # at most the killed node's share of the window
    shown = nodes_shown(config)
    assert (shown["n1"]["role"], shown["n2"]["role"]) == ("lost", "leader")
