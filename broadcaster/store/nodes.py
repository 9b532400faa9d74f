"""The `nodes` table: each daemon's row, written at start, every heartbeat and at stop.

A row is owned by one incarnation (a random id the daemon picks at start);
every write names it, so two daemons given the same name never beat one row:
the second is refused at start while the first is live, and a daemon whose
row another took over hears so at its next beat. The reading side (`status`)
is `read.nodes`, on the plain driver like the other reading commands.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import Engine, bindparam, text

from broadcaster.nodes import Node, NodeRole, lost_after, may_replace, senders_per_carrier
from broadcaster.store.read import HEARTBEAT_SECONDS, NODE_COLUMNS, Reader, node_of
from broadcaster.store.read import nodes as read_nodes
from broadcaster.store.types import UTCDateTime

QUIET_LIMIT = lost_after(HEARTBEAT_SECONDS)
_TS = UTCDateTime()
_TIMES = [bindparam(n, type_=_TS) for n in ("started_at", "heartbeat_at", "stopped_at")]
_WRITTEN = ("host", "pid", "http_bind", "role", "started_at", "heartbeat_at", "stopped_at", "binds")
_INSERT = (
    f"INSERT INTO nodes (name, incarnation, {', '.join(_WRITTEN)}) "
    f"VALUES (:name, :inc, {', '.join(':' + c for c in _WRITTEN)}) "
    "ON CONFLICT (name) DO NOTHING RETURNING name"
)
_TAKE = (
    f"UPDATE nodes SET incarnation = :inc, {', '.join(f'{c} = :{c}' for c in _WRITTEN)} "
    "WHERE name = :name AND incarnation = :seen RETURNING name"
)
_BEAT = (
    "UPDATE nodes SET heartbeat_at = :heartbeat_at, role = :role, binds = :binds "
    "WHERE name = :name AND incarnation = :inc RETURNING name"
)
_STOP = (
    "UPDATE nodes SET heartbeat_at = :heartbeat_at, stopped_at = :heartbeat_at, binds = :binds "
    "WHERE name = :name AND incarnation = :inc RETURNING name"
)


class NodeNameTaken(RuntimeError):
    """Another live daemon beats under this node name; the message says who and how to fix."""

    def __init__(self, holder: Node, now: datetime) -> None:
        self.holder = holder
        quiet = (now - holder.heartbeat_at).total_seconds()
        super().__init__(
            f"node name {holder.name!r} is in use by pid {holder.pid} on {holder.host} "
            f"(heartbeat {quiet:.1f} s ago); give this daemon another name "
            "(BROADCASTER_NODE, or `node` in the config) or stop that one"
        )


def nodes(engine: Engine) -> list[Node]:
    """Every node row, by name."""
    with Reader.of(engine) as reader:
        return read_nodes(reader)


def carrier_shares(engine: Engine, now: datetime) -> dict[str, int]:
    """How many live nodes send on each carrier (each takes that fraction of its caps)."""
    return senders_per_carrier(nodes(engine), now, QUIET_LIMIT)


def register(
    engine: Engine, node: Node, incarnation: str, *, is_dead: Callable[[Node], bool]
) -> None:
    """Take the row of `node.name` for this incarnation, or raise NodeNameTaken.

    The row is replaced only as it was read (its incarnation in the WHERE), so
    of two daemons starting under one name at the same moment one wins.
    """
    now = node.heartbeat_at
    with engine.begin() as conn:
        row = conn.execute(
            text(f"SELECT {NODE_COLUMNS}, incarnation FROM nodes WHERE name = :name"),
            {"name": node.name},
        ).first()
        seen = node_of(tuple(row)[:-1]) if row else None
        if seen is not None and not may_replace(seen, now, QUIET_LIMIT, dead_here=is_dead(seen)):
            raise NodeNameTaken(seen, now)
        sql = _INSERT if row is None else _TAKE
        params = {**_params(node, incarnation), "seen": row[-1] if row else None}
        won = conn.execute(text(sql).bindparams(*_TIMES), params).first()
    if won is None:  # another daemon of this name got in between our read and write
        raise NodeNameTaken({n.name: n for n in nodes(engine)}[node.name], now)


def beat(
    engine: Engine,
    name: str,
    incarnation: str,
    *,
    now: datetime,
    role: NodeRole,
    binds: Mapping[str, bool],
) -> bool:
    """Write a heartbeat; False when the row is no longer ours (taken by a namesake)."""
    return _update(engine, _BEAT, name, incarnation, now, role=role.value, binds=binds)


def stop(engine: Engine, name: str, incarnation: str, *, now: datetime) -> bool:
    """Mark our node stopped, so peers stop counting it at once rather than after 3 beats."""
    return _update(engine, _STOP, name, incarnation, now, binds={})


def _update(
    engine: Engine,
    sql: str,
    name: str,
    incarnation: str,
    now: datetime,
    *,
    binds: Mapping[str, bool],
    **values: object,
) -> bool:
    stmt = text(sql).bindparams(bindparam("heartbeat_at", type_=_TS))
    params = {"name": name, "inc": incarnation, "heartbeat_at": now, **values}
    params["binds"] = json.dumps(dict(binds), sort_keys=True)
    with engine.begin() as conn:
        return conn.execute(stmt, params).first() is not None


def _params(node: Node, incarnation: str) -> dict[str, object]:
    return {
        "name": node.name,
        "inc": incarnation,
        "host": node.host,
        "pid": node.pid,
        "http_bind": node.http_bind,
        "role": node.role.value,
        "started_at": node.started_at,
        "heartbeat_at": node.heartbeat_at,
        "stopped_at": node.stopped_at,
        "binds": json.dumps(dict(node.binds), sort_keys=True),
    }
