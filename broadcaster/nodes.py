"""The daemons sharing one database, as each one's row in `nodes` tells of it.

Pure: the time comes in as an argument. A node beats every heartbeat
(store/nodes.py writes it); a node quiet for `lost_after` (3 heartbeats) is
`lost`, whatever role it last wrote: it was killed, frozen or cut off, and its
leases run out on their own. A node stopped cleanly says so and is `stopped`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

LOST_BEATS = 3  # heartbeats a node may miss before it is shown lost
NAME_MAX = 64  # the `nodes.name` column
SENDER_SUFFIX = "/sms-send"


def sender_name(node_name: str) -> str:
    """Name the node of a `broadcaster sms send` run: beside its host's daemon, never it.

    It registers like a daemon so that daemons sending on the same carriers
    count it and leave it its share of the rate and window.
    """
    return node_name[: NAME_MAX - len(SENDER_SUFFIX)] + SENDER_SUFFIX


class NodeRole(StrEnum):
    LEADER = "leader"  # holds the scheduler lock: plans and fires
    STANDBY = "standby"  # sends SMS and serves stations, waits for the lock
    SENDER = "sender"  # `broadcaster sms send`: sends SMS, never schedules nor serves
    LOST = "lost"  # no heartbeat for LOST_BEATS heartbeats
    STOPPED = "stopped"  # stopped cleanly


@dataclass(frozen=True)
class Node:
    """One daemon as its last heartbeat described it."""

    name: str
    host: str
    pid: int
    http_bind: str | None
    role: NodeRole  # as written by the node itself: leader or standby
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None = None
    binds: Mapping[str, bool] = field(default_factory=dict)  # carrier -> bound now

    def __post_init__(self) -> None:
        for moment in (self.started_at, self.heartbeat_at, self.stopped_at):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("naive datetime refused: pass a timezone-aware value")


def lost_after(heartbeat: float) -> timedelta:
    """How long a node may stay quiet before it is shown lost."""
    return timedelta(seconds=LOST_BEATS * heartbeat)


def state(node: Node, now: datetime, quiet_limit: timedelta) -> NodeRole:
    """Say what a node is now: its own role while it beats, else lost (or stopped)."""
    if node.stopped_at is not None:
        return NodeRole.STOPPED
    if now - node.heartbeat_at > quiet_limit:
        return NodeRole.LOST
    return node.role


def is_live(node: Node, now: datetime, quiet_limit: timedelta) -> bool:
    return state(node, now, quiet_limit) in (NodeRole.LEADER, NodeRole.STANDBY, NodeRole.SENDER)


def may_replace(
    existing: Node | None, now: datetime, quiet_limit: timedelta, *, dead_here: bool
) -> bool:
    """Tell whether a daemon starting under `existing`'s name may take its row.

    A live row belongs to someone else: two daemons must never beat one row.
    A lost or stopped one is free, and so is one whose process is known dead
    (`dead_here`: same host, no such pid), so a restart after kill -9 need not
    wait out the heartbeats.
    """
    if existing is None or dead_here:
        return True
    return not is_live(existing, now, quiet_limit)


def senders_per_carrier(
    nodes: Iterable[Node], now: datetime, quiet_limit: timedelta
) -> dict[str, int]:
    """Count the live nodes running a sender for each carrier (bound or rebinding).

    A carrier's rate and window are shared among these: a node whose bind is
    down still holds its share, so a bind coming back never pushes the sum
    over the contract before its peers have counted it.
    """
    counts: dict[str, int] = {}
    for node in nodes:
        if is_live(node, now, quiet_limit):
            for carrier in node.binds:
                counts[carrier] = counts.get(carrier, 0) + 1
    return counts
