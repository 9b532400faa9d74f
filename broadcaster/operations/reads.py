"""Operations that read: what an account may see, limited to its areas where they have one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from broadcaster.accounts import Account, Action, check, covers
from broadcaster.levels import InForce, latest_changes, level_in_force
from broadcaster.occurrence import Occurrence
from broadcaster.operations.context import Context
from broadcaster.sms.encoding import encode_text, gsm_septets
from broadcaster.store.accounts import AuditEntry
from broadcaster.store.audio import AsRun, Notice


@dataclass(frozen=True)
class TextPreview:
    """How a text goes out as SMS: encoding, parts, and the characters that force UCS-2."""

    encoding: str
    parts: int
    characters: int
    ucs2_characters: tuple[str, ...]


def levels(ctx: Context, actor: Account) -> list[InForce]:
    """The level in force in every area the actor covers, in tree order."""
    check(actor, Action.READ, ctx.registry)
    from broadcaster.store.levels import load_changes

    latest = latest_changes(load_changes(ctx.engine))
    return [
        level_in_force(a.code, ctx.registry, ctx.ladders, latest)
        for a in ctx.registry.all()
        if covers(actor, ctx.registry, a.code)
    ]


def level(ctx: Context, actor: Account, area: str) -> InForce:
    """The level in force in one area the actor covers."""
    check(actor, Action.READ, ctx.registry, [area])
    from broadcaster.store.levels import load_changes

    latest = latest_changes(load_changes(ctx.engine))
    return level_in_force(area, ctx.registry, ctx.ladders, latest)


def plan_day(ctx: Context, actor: Account, day: date, area: str) -> list[Occurrence]:
    """What is planned on a local day for an area: on it, above it and below it."""
    check(actor, Action.READ, ctx.registry, [area])
    from broadcaster.planner import plan
    from broadcaster.schedule_approval import load_checked
    from broadcaster.store.levels import load_changes

    tz = ctx.settings.tz
    start = datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    occurrences = plan(
        load_checked(ctx.settings), load_changes(ctx.engine), ctx.registry, start, end, tz
    )
    related = {
        area,
        *(a.code for a in ctx.registry.ancestors(area)),
        *(a.code for a in ctx.registry.descendants(area)),
    }
    return [o for o in occurrences if o.area in related]


def text_preview(ctx: Context, actor: Account, text: str, unaccented: bool) -> TextPreview:
    """Encode a text as a blast would, without storing anything."""
    check(actor, Action.READ, ctx.registry)
    encoded = encode_text(text, unaccented=unaccented, max_parts=ctx.settings.sms.max_parts)
    forcing = tuple(c for c in dict.fromkeys(encoded.text) if gsm_septets(c) is None)
    return TextPreview(str(encoded.encoding), encoded.parts, len(encoded.text), forcing)


def blast_cost(ctx: Context, per_carrier: dict[str, int], parts: int) -> float:
    """What a blast costs: recipients × parts × each carrier's price per part."""
    return sum(
        n * parts * (ctx.settings.carriers[c].price_per_part if c in ctx.settings.carriers else 0.0)
        for c, n in per_carrier.items()
    )


def stations(ctx: Context, actor: Account) -> list[dict[str, Any]]:
    """Stations (and vans) in the actor's areas: health (last seen, state, cache,
    last aired) and their current or next slot."""
    check(actor, Action.READ, ctx.registry)
    from broadcaster.audio.publish import current_and_next, publisher
    from broadcaster.audio.publish import stations as all_stations
    from broadcaster.report.gather import HEALTH_FIELDS, station_health

    pub = publisher(ctx.settings, ctx.engine)
    now = ctx.now()
    health = station_health(ctx.settings, ctx.engine, now)
    rows = []
    for code, area in all_stations(ctx.registry).items():
        if not covers(actor, ctx.registry, area.code):
            continue
        current, upcoming = current_and_next(pub, code, now)
        slot = current or upcoming
        seen = health.get(code) or dict.fromkeys(HEALTH_FIELDS) | {"state": "offline"}
        rows.append(
            {
                "station": code,
                "area": area.code,
                "name": area.name,
                "slot": slot.id if slot else None,
                "start": slot.start if slot else None,
                "on_air": current is not None,
                **seen,
            }
        )
    return rows


def asrun(ctx: Context, actor: Account, day: date, station: str | None) -> list[AsRun]:
    """What stations in the actor's areas reported airing on a local day."""
    check(actor, Action.READ, ctx.registry)
    from broadcaster.audio.publish import stations as all_stations
    from broadcaster.store.audio import load_asrun

    tz = ctx.settings.tz
    mine = {
        code
        for code, area in all_stations(ctx.registry).items()
        if covers(actor, ctx.registry, area.code)
    }
    start = datetime.combine(day, time(), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
    return [r for r in load_asrun(ctx.engine, station, start, end) if r.station in mine]


def notices(ctx: Context, actor: Account, limit: int = 100) -> list[Notice]:
    """The newest notices touching the actor's areas."""
    check(actor, Action.READ, ctx.registry)
    from broadcaster.store.audio import list_notices

    return [
        n
        for n in list_notices(ctx.engine, limit=limit)
        if any(covers(actor, ctx.registry, a) for a in n.areas if a in ctx.registry)
    ]


def audit(ctx: Context, actor: Account, limit: int = 200) -> list[AuditEntry]:
    """The newest audit rows (who did what, by account)."""
    check(actor, Action.READ, ctx.registry)
    from broadcaster.store.accounts import load_audit

    return load_audit(ctx.engine, limit=limit)
