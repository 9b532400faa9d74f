"""Level change in the console: pick a level, see what the next 24 h gain or lose, confirm."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from broadcaster import operations
from broadcaster.accounts import Account, Action
from broadcaster.console import queries
from broadcaster.console.app import PREFIX, Console, form_text
from broadcaster.console.pages import area_tree
from broadcaster.impact import Impact, level_impact
from broadcaster.operations import Context
from broadcaster.schedule_approval import load_checked
from broadcaster.store.levels import load_changes
from broadcaster.store.schedules import recipients_by_commune

HORIZON = timedelta(hours=24)


def routes(console: Console) -> list[Route]:
    views = _Levels(console)
    return [
        Route("/levels", console.page(views.index)),
        Route("/levels/preview", console.page(views.preview), methods=["POST"]),
        Route("/levels/set", console.page(views.confirm), methods=["POST"]),
    ]


class _Levels:
    def __init__(self, console: Console) -> None:
        self.c = console

    async def index(self, request: Request, actor: Account) -> Response:
        tree = await self.c.call(area_tree, self.c, actor)
        ladders = {name: ladder.levels for name, ladder in self.c.ctx.ladders.items()}
        return self.c.render(
            request,
            "levels.html",
            tree=tree,
            ladders=ladders,
            done=request.query_params.get("done"),
        )

    async def preview(self, request: Request, actor: Account) -> Response:
        area, level = self._chosen(request)
        queries.require(self.c.ctx, actor, Action.SET_LEVEL, [area])
        impact = await self.c.call(impact_of, self.c.ctx, area, level)
        ctx = self.c.ctx
        return self.c.render(
            request,
            "level_preview.html",
            impact=impact,
            area=ctx.registry.get(area),
            label=ctx.ladders[ctx.registry.get(area).ladder].level(level).label,
            current=_current(ctx, area),
            reason=form_text(request.state.form, "reason", 500),
        )

    async def confirm(self, request: Request, actor: Account) -> Response:
        area, level = self._chosen(request)
        reason = form_text(request.state.form, "reason", 500).strip()
        if not reason:
            raise ValueError(self.c.tr(request, "Say why the level changes (a reason)."))
        await self.c.call(
            operations.set_level, self.c.ctx, actor, area=area, level=level, reason=reason
        )
        return RedirectResponse(f"{PREFIX}/levels?done={area}", status_code=303)

    def _chosen(self, request: Request) -> tuple[str, str]:
        form = request.state.form
        area, level = form_text(form, "area", 32), form_text(form, "level", 32)
        ladder = self.c.ctx.ladders[self.c.ctx.registry.get(area).ladder]
        ladder.index(level)
        return area, level


def impact_of(ctx: Context, area: str, level: str) -> Impact:
    """Plan the next 24 h with and without the new level; SMS counted from subscribers
    and priced at their carriers' prices."""
    now = ctx.now()
    per_commune = recipients_by_commune(ctx.engine)
    return level_impact(
        load_checked(ctx.settings),
        load_changes(ctx.engine),
        ctx.registry,
        area=area,
        level=level,
        start=now,
        end=now + HORIZON,
        tz=ctx.settings.tz,
        recipients={c: sum(n.values()) for c, n in per_commune.items()},
        part_price={c: operations.blast_cost(ctx, n, 1) for c, n in per_commune.items()},
    )


def _current(ctx: Context, area: str) -> str:
    from broadcaster.levels import latest_changes, level_in_force

    latest = latest_changes(load_changes(ctx.engine))
    return level_in_force(area, ctx.registry, ctx.ladders, latest).level
