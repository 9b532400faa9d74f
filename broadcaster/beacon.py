"""This daemon's row in `nodes`: taken at start, beaten every heartbeat, marked at stop.

A thread of its own, not the scheduler's loop: a standby waits for the lock
in another loop, and a busy planner must not make its node look lost. What
it writes comes from the process itself: the role from the scheduler lock,
the binds from the senders' registry (`binds.py`, which /metrics reads too).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog
from sqlalchemy import Engine

from broadcaster import binds
from broadcaster.nodes import Node, NodeRole
from broadcaster.store import nodes as store
from broadcaster.store.read import HEARTBEAT_SECONDS

ROLE_CHECK_SECONDS = 0.2  # the role is in memory: looking costs nothing

log = structlog.get_logger(__name__)


def dead_here(node: Node) -> bool:
    """Tell whether `node` ran on this host under a pid that no longer exists."""
    if node.host != socket.gethostname():
        return False
    try:
        os.kill(node.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: alive
        return False
    return False


class NodeBeacon:
    """Keep this daemon's node row current until stopped."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        http_bind: str | None,
        carriers: Sequence[str],
        role: Callable[[], NodeRole],
        clock: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.name = name
        self.http_bind = http_bind
        self.carriers = tuple(carriers)  # those this process runs a sender for
        self.role = role
        self.clock = clock
        self.incarnation = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="node-beacon", daemon=True)
        self._owned = True
        self._registered_role = NodeRole.STANDBY

    def start(self) -> None:
        """Register (NodeNameTaken if a live namesake beats) and start beating."""
        now = self.clock()
        node = Node(
            self.name,
            socket.gethostname(),
            os.getpid(),
            self.http_bind,
            self.role(),
            now,
            now,
            binds=self._binds(),
        )
        store.register(self.engine, node, self.incarnation, is_dead=dead_here)
        self._registered_role = node.role
        log.info("node.registered", node=self.name, role=node.role.value, http=self.http_bind)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and mark the node stopped (peers then stop counting it at once)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=HEARTBEAT_SECONDS)
        try:
            store.stop(self.engine, self.name, self.incarnation, now=self.clock())
        except Exception as exc:  # noqa: BLE001 - unreachable now: the row goes lost instead
            log.error("node.stop_unrecorded", node=self.name, detail=str(exc))

    def _wait_beat(self, shown: NodeRole) -> bool:
        """Wait for the next heartbeat, or less when the role differs from the one last
        written (a takeover, the lock lost): status shows the new leader at once, not up
        to a beat later. False once stopped."""
        waited = 0.0
        while waited < HEARTBEAT_SECONDS:
            if self._stop.wait(ROLE_CHECK_SECONDS):
                return False
            waited += ROLE_CHECK_SECONDS
            if self.role() != shown:
                break
        return True

    def _binds(self) -> dict[str, bool]:
        up = binds.BINDS.snapshot()
        return {carrier: up.get(carrier, False) for carrier in self.carriers}

    def _run(self) -> None:
        shown = self._registered_role
        while self._wait_beat(shown):
            shown = self.role()
            try:
                owned = store.beat(
                    self.engine,
                    self.name,
                    self.incarnation,
                    now=self.clock(),
                    role=shown,
                    binds=self._binds(),
                )
            except Exception as exc:  # noqa: BLE001 - a busy database must not end the beacon
                log.error("node.heartbeat_failed", node=self.name, detail=str(exc))
                continue
            if self._owned and not owned:  # said once: the row never comes back to us
                self._owned = False
                log.error(
                    "node.name_taken",
                    node=self.name,
                    detail="another daemon took this node's row; rename one of them",
                )
