"""Read-only console pages: overview, timeline, stations, as-run, audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broadcaster import operations
from broadcaster.accounts import Account, Action
from broadcaster.console import queries
from broadcaster.console.app import Console
from broadcaster.dropped import planned_drops
from broadcaster.occurrence import Channel, Occurrence
from broadcaster.schedule_files import ScheduleError
from broadcaster.store.audio import NoticeState
from broadcaster.store.dispatch import DispatchState, keys_in
from broadcaster.timeline import Geometry, Labels, timeline_svg

ASRUN_ROWS = 300
GEOMETRY = Geometry(area_column=170, channel_column=80, axis=960)  # fits a laptop screen
AUDIT_ROWS = 200


def routes(console: Console) -> list[Route]:
    views = _Pages(console)
    return [
        Route("/", console.page(views.overview)),
        Route("/timeline", console.page(views.timeline)),
        Route("/timeline.svg", console.page(views.timeline_file)),
        Route("/stations", console.page(views.stations)),
        Route("/asrun", console.page(views.asrun)),
        Route("/audit", console.page(views.audit)),
    ]


class _Pages:
    def __init__(self, console: Console) -> None:
        self.c = console

    async def overview(self, request: Request, actor: Account) -> Response:
        data = await self.c.call(self._overview, actor, self._labels(request))
        return self.c.render(request, "overview.html", **data)

    def _overview(self, actor: Account, labels: Labels) -> dict[str, Any]:
        ctx = self.c.ctx
        day = ctx.now().astimezone(ctx.settings.tz).date()
        return {
            "tree": grouped(area_tree(self.c, actor)),
            "picture": Markup(self._picture(actor, day, None, labels)),
            "day": day,
            "blasts": queries.blasts(ctx, actor, states=("draft",)),
            "notices": [
                n for n in operations.notices(ctx, actor) if n.state is NoticeState.PENDING
            ],
            "stations": queries.station_health(ctx, actor, everyone=True),
            "schedules": self._schedule_review(actor),
        }

    def _schedule_review(self, actor: Account) -> Any:
        """What schedule edits wait for an approver, or None when they cannot be read."""
        try:
            return operations.schedule_review(self.c.ctx, actor)
        except ScheduleError:
            return None

    async def timeline(self, request: Request, actor: Account) -> Response:
        day, area = self._day_and_area(request)
        picture = await self.c.call(self._picture, actor, day, area, self._labels(request))
        return self.c.render(
            request,
            "timeline.html",
            picture=Markup(picture),
            day=day,
            area=area,
            areas=queries.visible_areas(self.c.ctx, actor),
            previous=day - timedelta(days=1),
            following=day + timedelta(days=1),
        )

    async def timeline_file(self, request: Request, actor: Account) -> Response:
        day, area = self._day_and_area(request)
        svg = await self.c.call(self._picture, actor, day, area, self._labels(request))
        return Response(
            svg,
            media_type="image/svg+xml",
            headers={"content-disposition": f'inline; filename="plan-{day.isoformat()}.svg"'},
        )

    def _day_and_area(self, request: Request) -> tuple[date, str | None]:
        ctx = self.c.ctx
        text = request.query_params.get("day", "")
        try:
            day = date.fromisoformat(text) if text else ctx.now().astimezone(ctx.settings.tz).date()
        except ValueError:
            raise ValueError(self.c.tr(request, "A day looks like 2026-12-01.")) from None
        area = request.query_params.get("area") or None
        if area is not None:
            ctx.registry.get(area)
        return day, area

    def _picture(self, actor: Account, day: date, area: str | None, labels: Labels) -> str:
        """The timeline of one local day for what reaches `area` (or each of the actor's)."""
        ctx = self.c.ctx
        tz = ctx.settings.tz
        start = datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
        roots = [area] if area else sorted(code for code in actor.areas if code in ctx.registry)
        found: dict[tuple[str, str, datetime], Occurrence] = {}
        for root in roots:
            found.update((o.key, o) for o in operations.plan_day(ctx, actor, day, root))
        occurrences = sorted(found.values(), key=lambda o: o.at)
        missed = keys_in(ctx.engine, start, end, [DispatchState.MISSED])
        dropped = set(planned_drops(ctx.settings, ctx.registry, occurrences, ctx.engine))
        title = ctx.registry.get(area).name if area else ""
        return timeline_svg(
            occurrences,
            ctx.registry,
            start,
            end,
            tz,
            now=ctx.now(),
            missed=missed,
            dropped=dropped,
            labels=labels,
            geometry=GEOMETRY,
            title=" · ".join(filter(None, [title, f"{day:%d/%m/%Y}"])),
        )

    def _labels(self, request: Request) -> Labels:
        _ = self.c.gettext(request)
        return Labels(
            channels={
                Channel.LOUDSPEAKER: _("Loudspeaker"),
                Channel.RELAY: _("Relay"),
                Channel.VAN: _("Van"),
                Channel.SMS: _("SMS"),
                Channel.TASK: _("Task"),
            },
            now=_("Now"),
            dropped=_("Dropped from its slot"),
            missed=_("Missed"),
            emergency=_("Emergency"),
            nothing=_("Nothing planned"),
        )

    async def stations(self, request: Request, actor: Account) -> Response:
        rows = await self.c.call(queries.station_health, self.c.ctx, actor, everyone=True)
        return self.c.render(request, "stations.html", stations=rows)

    async def asrun(self, request: Request, actor: Account) -> Response:
        ctx = self.c.ctx
        day, _area = self._day_and_area(request)
        station = request.query_params.get("station") or None
        rows = await self.c.call(operations.asrun, ctx, actor, day, station)
        return self.c.render(
            request,
            "asrun.html",
            rows=list(reversed(rows))[:ASRUN_ROWS],
            station=station,
            day=day,
            stations=[code for code, _ in queries.visible_stations(ctx, actor)],
        )

    async def audit(self, request: Request, actor: Account) -> Response:
        rows = await self.c.call(operations.audit, self.c.ctx, actor, AUDIT_ROWS)
        return self.c.render(request, "audit.html", rows=rows)


def area_tree(console: Console, actor: Account) -> list[dict[str, Any]]:
    """Each area the actor covers, in tree order, with its level, since when and from where."""
    ctx = console.ctx
    rows = []
    for force in operations.levels(ctx, actor):
        area = ctx.registry.get(force.area)
        ladder = ctx.ladders[area.ladder]
        rows.append(
            {
                "area": area,
                "depth": len(ctx.registry.ancestors(area.code)),
                "level": force.level,
                "label": ladder.level(force.level).label,
                "rank": ladder.index(force.level),
                "top": len(ladder.names) - 1,
                "since": force.since,
                "by": force.by,
                "inherited": force.inherited_from,
                "settable": queries.may(ctx, actor, Action.SET_LEVEL, [area.code]),
            }
        )
    return rows


def grouped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold areas that only follow the level above them under that area, so a district
    of 24 communes at the district's level reads as one line, not 25."""
    out: list[dict[str, Any]] = []
    shown: dict[str, dict[str, Any]] = {}
    for row in rows:
        origin = shown.get(row["inherited"] or "")
        if origin is not None:
            origin["followers"].append(row)
            continue
        shown[row["area"].code] = {**row, "followers": []}
        out.append(shown[row["area"].code])
    return out
