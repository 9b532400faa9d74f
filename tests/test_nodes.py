"""Nodes: what a node is shown as from its heartbeat (pure), and its row in the database
(SQLite and PostgreSQL): one live daemon per name, beats, a clean stop."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from broadcaster.beacon import dead_here
from broadcaster.nodes import (
    Node,
    NodeRole,
    lost_after,
    may_replace,
    sender_name,
    senders_per_carrier,
    state,
)
from broadcaster.store import nodes as store

T0 = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
LIMIT = lost_after(2.0)


def node(name: str = "hue-1", **changes: object) -> Node:
    fields: dict[str, object] = {
        "name": name,
        "host": "centre",
        "pid": 4242,
        "http_bind": "127.0.0.1:8080",
        "role": NodeRole.LEADER,
        "started_at": T0,
        "heartbeat_at": T0,
        "binds": {"viettel": True},
    }
    return Node(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_node_keeps_its_role_until_three_heartbeats_pass_then_is_lost() -> None:
    assert timedelta(seconds=6) == LIMIT
    assert state(node(), T0 + timedelta(seconds=6), LIMIT) is NodeRole.LEADER
    assert state(node(role=NodeRole.STANDBY), T0 + timedelta(seconds=5), LIMIT) is NodeRole.STANDBY
    assert state(node(), T0 + timedelta(seconds=6.1), LIMIT) is NodeRole.LOST


def test_a_node_stopped_cleanly_is_stopped_not_lost() -> None:
    stopped = node(stopped_at=T0)
    assert state(stopped, T0 + timedelta(hours=1), LIMIT) is NodeRole.STOPPED


def test_a_naive_heartbeat_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        node(heartbeat_at=T0.replace(tzinfo=None))


def test_a_name_is_free_when_its_row_is_lost_stopped_or_its_process_gone() -> None:
    live = node()
    soon = T0 + timedelta(seconds=3)
    assert not may_replace(live, soon, LIMIT, dead_here=False)
    assert may_replace(live, soon, LIMIT, dead_here=True)
    assert may_replace(live, T0 + timedelta(seconds=7), LIMIT, dead_here=False)
    assert may_replace(node(stopped_at=T0), soon, LIMIT, dead_here=False)
    assert may_replace(None, soon, LIMIT, dead_here=False)


def test_each_carrier_is_shared_by_the_live_nodes_running_its_sender_bound_or_not() -> None:
    nodes = [
        node("a", binds={"viettel": True, "mobifone": True}),
        node("b", binds={"viettel": False}),  # rebinding: still holds its share
        node("c", binds={}),  # --no-sms
        node("d", binds={"viettel": True}, heartbeat_at=T0 - timedelta(seconds=10)),  # lost
        node("e", binds={"viettel": True}, stopped_at=T0),
        node("a/sms-send", role=NodeRole.SENDER, http_bind=None, binds={"mobifone": True}),
    ]
    assert senders_per_carrier(nodes, T0, LIMIT) == {"viettel": 2, "mobifone": 2}


def test_an_sms_send_run_is_named_beside_its_hosts_daemon_within_the_column() -> None:
    assert sender_name("hue-1") == "hue-1/sms-send"
    long = sender_name("x" * 64)
    assert len(long) == 64 and long.endswith("/sms-send")


# --- the table, on both databases ---------------------------------------------------


def never_dead(_: Node) -> bool:
    return False


def test_a_registered_node_is_read_back_with_its_binds(engine: Engine) -> None:
    store.register(engine, node(), "inc-1", is_dead=never_dead)
    store.register(
        engine, node("hue-2", role=NodeRole.STANDBY, binds={}), "inc-2", is_dead=never_dead
    )
    [first, second] = store.nodes(engine)
    assert first == node()
    assert (second.name, second.role, second.binds) == ("hue-2", NodeRole.STANDBY, {})


def test_a_second_daemon_under_a_live_name_is_refused_and_told_who_holds_it(
    engine: Engine,
) -> None:
    store.register(engine, node(), "inc-1", is_dead=never_dead)
    later = node(pid=999, heartbeat_at=T0 + timedelta(seconds=2), started_at=T0)
    with pytest.raises(store.NodeNameTaken, match=r"'hue-1' is in use by pid 4242 on centre"):
        store.register(engine, later, "inc-2", is_dead=never_dead)
    assert [n.pid for n in store.nodes(engine)] == [4242]


def test_a_lost_nodes_name_is_taken_over_and_the_old_incarnation_hears_it_at_its_beat(
    engine: Engine,
) -> None:
    store.register(engine, node(), "inc-1", is_dead=never_dead)
    later = T0 + timedelta(seconds=7)
    store.register(engine, node(pid=999, heartbeat_at=later), "inc-2", is_dead=never_dead)
    beat = {"now": later, "role": NodeRole.LEADER, "binds": {}}
    assert store.beat(engine, "hue-1", "inc-1", **beat) is False  # type: ignore[arg-type]
    assert store.beat(engine, "hue-1", "inc-2", **beat) is True  # type: ignore[arg-type]
    assert [n.pid for n in store.nodes(engine)] == [999]


def test_a_beat_moves_the_heartbeat_role_and_binds_and_a_stop_marks_the_row(
    engine: Engine,
) -> None:
    store.register(engine, node(role=NodeRole.STANDBY), "inc-1", is_dead=never_dead)
    at = T0 + timedelta(seconds=2)
    store.beat(engine, "hue-1", "inc-1", now=at, role=NodeRole.LEADER, binds={"viettel": False})
    [beaten] = store.nodes(engine)
    assert (beaten.heartbeat_at, beaten.role, beaten.binds) == (
        at,
        NodeRole.LEADER,
        {"viettel": False},
    )
    assert store.stop(engine, "hue-1", "inc-1", now=at + timedelta(seconds=1))
    [stopped] = store.nodes(engine)
    assert state(stopped, at, LIMIT) is NodeRole.STOPPED
    assert store.carrier_shares(engine, at) == {}


def test_a_name_whose_process_died_on_this_host_is_free_at_once() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = os.uname().nodename
    assert dead_here(node(host=host, pid=gone.pid))
    assert not dead_here(node(host=host, pid=os.getpid()))
    assert not dead_here(node(host="elsewhere", pid=gone.pid))
