"""Urgent notices in the console: issue (spoken text), approve by a second account, retract."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from broadcaster import operations
from broadcaster.accounts import Account, Action
from broadcaster.console import queries
from broadcaster.console.app import PREFIX, Console, form_text
from broadcaster.store.audio import NoticeState

MAX_TEXT = 1000


def routes(console: Console) -> list[Route]:
    views = _Notices(console)
    return [
        Route("/notices", console.page(views.index)),
        Route("/notices", console.page(views.issue), methods=["POST"]),
        Route("/notices/{id:int}/approve", console.page(views.approve), methods=["POST"]),
        Route("/notices/{id:int}/retract", console.page(views.retract), methods=["POST"]),
    ]


class _Notices:
    def __init__(self, console: Console) -> None:
        self.c = console

    async def index(
        self, request: Request, actor: Account, status: int = 200, message: str | None = None
    ) -> Response:
        ctx = self.c.ctx
        found = await self.c.call(operations.notices, ctx, actor, 50)
        rows = [
            {
                "notice": n,
                "areas": [ctx.registry.get(code) for code in n.areas if code in ctx.registry],
                "may_approve": queries.may_approve_notice(ctx, actor, n),
                "may_retract": (
                    n.state is NoticeState.LIVE
                    and queries.may(ctx, actor, Action.RETRACT_NOTICE, n.areas)
                ),
            }
            for n in found
        ]
        return self.c.render(
            request,
            "notices.html",
            status,
            rows=rows,
            message=message,
            areas=queries.visible_areas(ctx, actor),
            may_issue=queries.may(ctx, actor, Action.ISSUE_NOTICE),
            done=request.query_params.get("done"),
        )

    async def issue(self, request: Request, actor: Account) -> Response:
        form = request.state.form
        body = form_text(form, "text", MAX_TEXT).strip()
        areas = [a for a in form.getlist("area") if isinstance(a, str)][:50]
        if not body or not areas:
            return await self.index(
                request,
                actor,
                400,
                self.c.tr(request, "Write the text and choose at least one area."),
            )
        issued = await self.c.call(
            operations.issue_notice, self.c.ctx, actor, areas=areas, text=body
        )
        return RedirectResponse(f"{PREFIX}/notices?done={issued.notice.id}", status_code=303)

    async def approve(self, request: Request, actor: Account) -> Response:
        notice_id = request.path_params["id"]
        await self.c.call(operations.approve_notice, self.c.ctx, actor, notice_id)
        return RedirectResponse(f"{PREFIX}/notices?done={notice_id}", status_code=303)

    async def retract(self, request: Request, actor: Account) -> Response:
        notice_id = request.path_params["id"]
        await self.c.call(operations.retract_notice, self.c.ctx, actor, notice_id)
        return RedirectResponse(f"{PREFIX}/notices?done={notice_id}", status_code=303)
