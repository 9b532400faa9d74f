"""Several `broadcaster run` processes on one database, told apart by BROADCASTER_NODE and
BROADCASTER_HTTP_BIND: status lists each with its role; a killed one shows lost after
3 heartbeats; a namesake of a live node is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import REPO, free_port
from tests.daemon_fixtures import (
    DaemonProcess,
    broadcaster,
    clock_times,
    config_factory,
    daemon_factory,
    node_env,
    now,
    task_schedule,
    wait_for,
)


@pytest.fixture
def daemons():
    yield from daemon_factory()


def start(daemons: Any, config: Path, name: str) -> DaemonProcess:
    daemon: DaemonProcess = daemons(config)
    daemon.env = node_env(name, free_port())
    return daemon.start()


def nodes_shown(config: Path) -> dict[str, dict[str, Any]]:
    status = json.loads(broadcaster(config, "status", "--format", "json").stdout)
    return {node["name"]: node for node in status["nodes"]}


def roles(config: Path) -> dict[str, str]:
    return {name: node["role"] for name, node in nodes_shown(config).items()}


def quiet_config(tmp_path: Path, db_url: str) -> Path:
    far = now() + timedelta(hours=12)  # nothing fires during the test
    return config_factory(tmp_path, db_url)(
        {"tick.toml": task_schedule("tick", clock_times(far, 1), "true")}
    )


def test_two_nodes_on_one_database_are_listed_with_roles_and_a_killed_one_goes_lost(
    tmp_path: Path, db_url: str, engine: Engine, daemons: Any
) -> None:
    config = quiet_config(tmp_path, db_url)
    first = start(daemons, config, "hue-a")
    second = start(daemons, config, "hue-b")
    wait_for(lambda: "daemon.standby" in second.stderr_path.read_text(), 10, "the standby")
    shown = nodes_shown(config)
    assert {n: v["role"] for n, v in shown.items()} == {"hue-a": "leader", "hue-b": "standby"}
    assert shown["hue-a"]["pid"] == first.process.pid
    assert shown["hue-b"]["pid"] == second.process.pid
    assert (
        set(shown["hue-a"]["binds"])
        == set(shown["hue-b"]["binds"])
        == {
            "viettel",
            "vinaphone",
            "mobifone",
        }
    )
    for daemon in (first, second):  # each serves on the bind its environment gave it
        bind = daemon.env["BROADCASTER_HTTP_BIND"]
        assert shown[daemon.env["BROADCASTER_NODE"]]["http"] == bind
        assert httpx.get(f"http://{bind}/healthz", timeout=5).status_code in (200, 503)
    text = broadcaster(config, "status").stdout
    assert "node hue-a: leader" in text and "node hue-b: standby" in text

    first.process.kill()  # kill -9: no goodbye, the row must go quiet on its own
    killed = time.monotonic()
    wait_for(lambda: roles(config) == {"hue-a": "lost", "hue-b": "leader"}, 20, "lost + takeover")
    took = time.monotonic() - killed
    # lost once 3 heartbeats (6 s) have passed since its last beat, which came ≤ 2 s before
    assert 3.5 <= took <= 12, took
    assert second.terminate() == 0
    assert roles(config) == {"hue-a": "lost", "hue-b": "stopped"}


def test_a_daemon_under_the_name_of_a_live_node_refuses_to_start(
    tmp_path: Path, db_url: str, engine: Engine, daemons: Any
) -> None:
    config = quiet_config(tmp_path, db_url)
    live = start(daemons, config, "hue-a")
    twin = subprocess.run(
        [sys.executable, "-m", "broadcaster", "--config", str(config), "run"],
        env={**os.environ, **node_env("hue-a", free_port())},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert twin.returncode == 1
    assert f"node name 'hue-a' is in use by pid {live.process.pid}" in twin.stderr
    assert "BROADCASTER_NODE" in twin.stderr
    assert nodes_shown(config)["hue-a"]["pid"] == live.process.pid
