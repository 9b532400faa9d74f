"""What /healthz answers: is this service able to do its work right now.

Healthy means the database answers and *some* daemon holds the scheduler and
heartbeats (its status row is younger than `STALE_AFTER`). Every daemon asks
the same question, the standby included: a standby cannot schedule, but it
can see that nobody does, which is what a monitor needs to hear from any
node it polls. `role` tells whether this process is the scheduler. Nothing
published yet also fails, so a fresh install is not reported ready before
stations have anything to fetch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from broadcaster.store import dispatch as store


@dataclass(frozen=True)
class Health:
    reasons: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.reasons

    def as_json(self) -> dict[str, Any]:
        status = {"status": "ok"} if self.ok else {"status": "fail", "reasons": list(self.reasons)}
        return {**status, **self.details}


def check(engine: Engine | None, node: str | None, now: datetime, published: bool | None) -> Health:
    """Check the database, the scheduler's heartbeat and that something is published
    (None: unknown, the database holding the publications did not answer)."""
    reasons: list[str] = []
    details: dict[str, Any] = {}
    if published is False:
        reasons.append("nothing published yet")
    if engine is None:
        return Health(tuple(reasons), details)
    try:
        row = store.read_status(engine)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the answer
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        reasons.append(f"database unreachable: {type(exc).__name__}: {first_line}")
        return Health(tuple(reasons), {**details, "database": "unreachable"})
    details["database"] = "ok"
    if row is None or row.heartbeat_at is None:
        reasons.append("no scheduler has run on this database")
        return Health(tuple(reasons), details)
    age = (now - row.heartbeat_at).total_seconds()
    details["scheduler"] = {
        "node": row.node,
        "heartbeat_at": row.heartbeat_at.isoformat(),
        "age_seconds": round(age, 1),
    }
    details["role"] = "scheduler" if row.node == node else "standby"
    if row.stopped_at is not None and row.stopped_at >= row.heartbeat_at:
        reasons.append(f"the scheduler on {row.node} stopped at {row.stopped_at.isoformat()}")
    elif age > store.STALE_AFTER.total_seconds():
        reasons.append(
            f"scheduler heartbeat stale: {row.node} last beat {age:.0f} s ago "
            f"(more than {store.STALE_AFTER.total_seconds():.0f} s)"
        )
    return Health(tuple(reasons), details)
