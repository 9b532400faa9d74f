"""What the console reads to draw its pages, filtered to the acting account's areas.

Reading only: every decision about who may see or do what is taken by the
rules in `broadcaster.accounts` (`check`, `covers`), asked here, never
re-implemented. Buttons are shown where those rules say yes; the operations
layer asks again when the button is pressed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from broadcaster.accounts import Account, Action, Forbidden, check, check_second_account, covers
from broadcaster.areas import Area
from broadcaster.audio.publish import stations as all_stations
from broadcaster.operations import Context
from broadcaster.store.audio import Notice, NoticeState
from broadcaster.store.db import session_scope
from broadcaster.store.sms import BlastRow as StoredBlast


def may(ctx: Context, actor: Account, action: Action, areas: Iterable[str] = ()) -> bool:
    """Whether the rules allow `actor` to take `action` on `areas` (to show a button)."""
    try:
        check(actor, action, ctx.registry, list(areas))
    except Forbidden:
        return False
    return True


def require(ctx: Context, actor: Account, action: Action, areas: Iterable[str] = ()) -> None:
    check(actor, action, ctx.registry, list(areas))


def visible_areas(ctx: Context, actor: Account) -> list[Area]:
    """The areas an account may act on, in tree order (for pickers)."""
    return [a for a in ctx.registry.all() if covers(actor, ctx.registry, a.code)]


@dataclass(frozen=True)
class BlastRow:
    """One blast as the console lists it."""

    id: int
    text: str
    areas: tuple[str, ...]
    state: str
    exercise: bool
    priority: str
    encoding: str
    parts: int
    created_at: datetime
    created_by: str
    created_by_account: int | None
    approved_by: str | None
    approved_at: datetime | None


def blasts(
    ctx: Context, actor: Account, *, states: Sequence[str] | None = None, limit: int = 100
) -> list[BlastRow]:
    """The newest blasts in the account's areas, optionally in some states only."""
    query = select(StoredBlast).order_by(StoredBlast.id.desc()).limit(limit * 4)
    if states:
        query = query.where(StoredBlast.state.in_(list(states)))
    with session_scope(ctx.engine) as session:
        rows = [_blast(r) for r in session.scalars(query)]
    return [b for b in rows if may(ctx, actor, Action.READ, b.areas)][:limit]


def blast(ctx: Context, actor: Account, blast_id: int) -> BlastRow:
    """One blast the account may read; LookupError when there is none."""
    with session_scope(ctx.engine) as session:
        row = session.get(StoredBlast, blast_id)
        found = _blast(row) if row is not None else None
    if found is None:
        raise LookupError(f"no blast {blast_id}")
    require(ctx, actor, Action.READ, found.areas)
    return found


def may_approve_blast(ctx: Context, actor: Account, found: BlastRow) -> bool:
    """Whether the approve button shows: an approver over its areas who did not draft it."""
    if found.state != "draft" or not may(ctx, actor, Action.APPROVE_BLAST, found.areas):
        return False
    try:
        check_second_account(actor, found.created_by_account, found.created_by, "")
    except Forbidden:
        return False
    return True


def _blast(row: StoredBlast) -> BlastRow:
    return BlastRow(
        row.id,
        row.text,
        tuple(json.loads(row.areas)["areas"]),
        row.state,
        bool(row.exercise),
        row.priority,
        row.encoding,
        row.parts,
        row.created_at,
        row.created_by,
        row.created_by_account,
        row.approved_by,
        row.approved_at,
    )


def may_approve_notice(ctx: Context, actor: Account, notice: Notice) -> bool:
    """Whether the approve button shows: pending, an approver over its areas, not its author."""
    if notice.state is not NoticeState.PENDING:
        return False
    if not may(ctx, actor, Action.APPROVE_NOTICE, notice.areas):
        return False
    try:
        check_second_account(actor, None, notice.created_by, "")
    except Forbidden:
        return False
    return True


def visible_stations(ctx: Context, actor: Account) -> list[tuple[str, Area]]:
    """Stations (and district vans) in the account's areas, by code."""
    return sorted(
        (code, area)
        for code, area in all_stations(ctx.registry).items()
        if covers(actor, ctx.registry, area.code)
    )


@dataclass(frozen=True)
class StationHealth:
    """What the console says about a station: when it was last heard of, and so its state."""

    code: str
    area: Area
    last_seen: datetime | None
    state: str  # "ok", "late", "offline" or "unknown"


def station_health(ctx: Context, actor: Account, *, everyone: bool = False) -> list[StationHealth]:
    """Stations in the account's areas; only the late and offline ones unless `everyone`.

    The state is the centre's one rule (`report.gather.station_health`: heartbeats
    and polls against `[stations] late_after` / `offline_after`); a station never
    heard of is "unknown" here, an online one "ok"."""
    from broadcaster.report.gather import station_health as centre_health

    health = centre_health(ctx.settings, ctx.engine, ctx.now())
    rows = []
    for code, area in visible_stations(ctx, actor):
        seen = health.get(code, {})
        last = seen.get("last_seen")
        state = "unknown" if last is None else {"online": "ok"}.get(seen["state"], seen["state"])
        if everyone or state in ("late", "offline"):
            rows.append(StationHealth(code, area, last, state))
    return rows
