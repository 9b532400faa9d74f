"""Several real `broadcaster run` nodes on one PostgreSQL schema, as separate machines.

Each node is a `DaemonProcess` (tests/daemon_fixtures.py) with an environment of
its own: its name (`BROADCASTER_NODE`), its station API port
(`BROADCASTER_HTTP_BIND`) and its own data folder (`BROADCASTER_DATA_DIR`, seeded
with the normalised sample audio so no node runs ffmpeg), over one config file
and one database. What the nodes share beyond the file (carrier ports, leases)
comes in the cluster's environment too, as an operator would set it. Who leads
is read from the database the nodes write, never from their memory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, text

from broadcaster.store import dispatch as store
from tests.audio_fixtures import seed_store
from tests.conftest import free_port
from tests.daemon_fixtures import DaemonProcess, node_env, wait_for


@dataclass
class Node:
    """One `broadcaster run` process with its own name, port and data folder."""

    name: str
    daemon: DaemonProcess
    port: int
    data_dir: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.daemon.process is not None
        return self.daemon.process.pid

    @property
    def alive(self) -> bool:
        return self.daemon.process is not None and self.daemon.process.poll() is None

    def log(self) -> str:
        return self.daemon.stderr_path.read_text(errors="replace")


@dataclass
class Cluster:
    """Nodes on one config and database; the first started leads."""

    config: Path
    engine: Engine
    nodes: list[Node] = field(default_factory=list)

    def start(self, timeout: float = 90) -> Cluster:
        """Start the first node and await its plan, then the others side by side, so
        the first is the leader and the others stand by."""
        first, *others = self.nodes
        first.daemon.start(timeout)
        for node in others:
            node.daemon.launch(timeout)
        for node in others:
            node.daemon.ready(timeout)
            wait_for(lambda n=node: "daemon.standby" in n.log(), 10, f"{node.name} to stand by")
        return self

    def leader(self) -> Node | None:
        """The node whose process holds the scheduler, by the status row it writes."""
        pid = leader_pid(self.engine)
        return next((n for n in self.nodes if n.alive and n.pid == pid), None)

    def kill(self, node: Node) -> float:
        """kill -9 a node; return the monotonic time of the kill."""
        assert node.daemon.process is not None
        node.daemon.process.kill()
        killed = time.monotonic()
        node.daemon.process.wait(5)
        return killed

    def await_new_leader(self, old: Node, timeout: float) -> tuple[Node, float]:
        """Wait for another node to take the scheduler; return it and when it did."""
        new = wait_for(
            lambda: (n := self.leader()) is not None and n is not old and n,
            timeout,
            f"a node other than {old.name} to lead",
        )
        return new, time.monotonic()


def leader_pid(engine: Engine) -> int | None:
    """The pid of the scheduling daemon: its status row says so while it runs."""
    row = store.read_status(engine)
    return row.pid if row is not None and row.stopped_at is None else None


def cluster_factory(
    tmp_path: Path, engine: Engine, audio_store: Path
) -> Iterator[Callable[[Path, int, Mapping[str, str]], Cluster]]:
    """Make clusters of `count` nodes on `config` with a shared environment; kill every
    node at the end of the test."""
    made: list[Cluster] = []

    def make(config: Path, count: int, env: Mapping[str, str]) -> Cluster:
        cluster = Cluster(config, engine)
        for i in range(count):
            name = f"node-{chr(ord('a') + i)}"
            port = free_port()
            data_dir = tmp_path / name
            seed_store(audio_store, data_dir)
            daemon = DaemonProcess(
                config,
                Path(f"/tmp/bcast-notify-{os.getpid()}-{len(made)}-{i}"),
                env={**env, **node_env(name, port, data_dir)},
            )
            cluster.nodes.append(Node(name, daemon, port, data_dir))
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        for node in cluster.nodes:
            node.daemon.kill()


def seed_subscribers_by_carrier(
    engine: Engine, per_carrier: Mapping[str, str], count: int, communes: list[str]
) -> dict[str, list[str]]:
    """Insert `count` subscribers on each carrier (by its prefix), spread over communes,
    in one set-based statement per carrier; return their numbers by carrier."""
    numbers: dict[str, list[str]] = {}
    with engine.begin() as connection:
        for carrier, prefix in per_carrier.items():
            connection.execute(
                text(
                    "INSERT INTO subscribers (msisdn, commune, carrier) "
                    "SELECT :head || lpad(i::text, 7, '0'), "
                    "  c.codes[1 + i % cardinality(c.codes)], :carrier "
                    "FROM generate_series(0, :count - 1) AS i, "
                    "  (SELECT CAST(:communes AS text[]) AS codes) AS c"
                ),
                {
                    "head": f"84{prefix[1:]}",
                    "communes": communes,
                    "carrier": carrier,
                    "count": count,
                },
            )
            numbers[carrier] = [f"84{prefix[1:]}{i:07d}" for i in range(count)]
    return numbers
