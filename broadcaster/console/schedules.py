"""Schedule changes in the console: what accepting the files would send, and accept them.

A schedule edit that adds or raises SMS or emergency programmes does not run
until an approver accepts it; this page shows the review (programmes added,
changed, removed; SMS a day and their cost per level, before and after) and
accepts exactly the files reviewed (their digest travels with the form).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from broadcaster import operations
from broadcaster.accounts import Account, Action
from broadcaster.console import queries
from broadcaster.console.app import PREFIX, Console, form_text


def routes(console: Console) -> list[Route]:
    views = _Schedules(console)
    return [
        Route("/schedules", console.page(views.index)),
        Route("/schedules/approve", console.page(views.approve), methods=["POST"]),
    ]


class _Schedules:
    def __init__(self, console: Console) -> None:
        self.c = console

    async def index(self, request: Request, actor: Account) -> Response:
        ctx = self.c.ctx
        found = await self.c.call(operations.schedule_review, ctx, actor)
        return self.c.render(
            request,
            "schedules.html",
            pending=found,
            loads=paired(found.review),
            may_approve=(
                found.review.pending
                and queries.may(ctx, actor, Action.APPROVE_SCHEDULE, found.areas)
            ),
            done=request.query_params.get("done"),
        )

    async def approve(self, request: Request, actor: Account) -> Response:
        digest = form_text(request.state.form, "sha256", 64)
        await self.c.call(operations.approve_schedules, self.c.ctx, actor, sha256=digest)
        return RedirectResponse(f"{PREFIX}/schedules?done=1", status_code=303)


def paired(review: Any) -> list[dict[str, Any]]:
    """SMS load per level, after and before, side by side (rows present on either side)."""
    before = {(b.ladder, b.level): b for b in review.before}
    after = {(a.ladder, a.level): a for a in review.after}
    keys = list(dict.fromkeys([*after, *before]))
    return [
        {"ladder": k[0], "level": k[1], "before": before.get(k), "after": after.get(k)}
        for k in keys
    ]
