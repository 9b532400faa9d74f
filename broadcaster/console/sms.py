"""SMS in the console: draft with a live preview, the approval queue, one blast's page.

The approve button shows only where the rules allow it (an approver over the
blast's areas who did not draft it); a forged POST still meets the same rule
in `operations.approve_blast`, which refuses it with 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from broadcaster import operations
from broadcaster.accounts import Account, Action
from broadcaster.console import queries
from broadcaster.console.app import PREFIX, Console, form_text
from broadcaster.operations import Context
from broadcaster.sms.blast import communes_of
from broadcaster.sms.encoding import TextTooLong
from broadcaster.sms.numbers import normalise_msisdn
from broadcaster.sms.states import Priority
from broadcaster.store.schedules import recipients_by_commune

MAX_TEXT = 2000


def routes(console: Console) -> list[Route]:
    views = _Sms(console)
    return [
        Route("/sms", console.page(views.index)),
        Route("/sms/new", console.page(views.new)),
        Route("/sms/preview", console.page(views.preview), methods=["POST"]),
        Route("/sms", console.page(views.draft), methods=["POST"]),
        Route("/sms/{id:int}", console.page(views.detail)),
        Route("/sms/{id:int}/status", console.page(views.status)),
        Route("/sms/{id:int}/approve", console.page(views.approve), methods=["POST"]),
        Route("/sms/{id:int}/cancel", console.page(views.cancel), methods=["POST"]),
    ]


@dataclass(frozen=True)
class LivePreview:
    """The draft form's preview: how the text encodes, and what it costs for the areas."""

    text: operations.TextPreview | None
    too_long: str | None  # why the text cannot be sent, when it is over the part cap
    recipients: int
    total_sms: int
    cost: float


def live_preview(
    ctx: Context, actor: Account, body: str, areas: list[str], *, unaccented: bool, exercise: bool
) -> LivePreview:
    """Preview a text for areas without storing anything."""
    try:
        encoded = operations.text_preview(ctx, actor, body, unaccented)
    except TextTooLong as exc:
        return LivePreview(None, str(exc), 0, 0, 0.0)
    if exercise:
        per_carrier = {carrier: 1 for carrier in _test_carriers(ctx)}
    else:
        per_carrier = {}
        everyone = recipients_by_commune(ctx.engine)
        for commune in communes_of(ctx.registry, areas):
            for carrier, n in everyone.get(commune, {}).items():
                per_carrier[carrier] = per_carrier.get(carrier, 0) + n
    recipients = sum(per_carrier.values())
    return LivePreview(
        encoded,
        None,
        recipients,
        recipients * encoded.parts,
        operations.blast_cost(ctx, per_carrier, encoded.parts),
    )


def _test_carriers(ctx: Context) -> list[str]:
    router = ctx.router
    return [router.route(normalise_msisdn(n)) or "?" for n in ctx.settings.sms.test_numbers]


class _Sms:
    def __init__(self, console: Console) -> None:
        self.c = console

    async def index(self, request: Request, actor: Account) -> Response:
        ctx = self.c.ctx
        pending = await self.c.call(queries.blasts, ctx, actor, states=("draft",))
        recent = await self.c.call(queries.blasts, ctx, actor, limit=50)
        return self.c.render(
            request,
            "sms_list.html",
            pending=pending,
            recent=[b for b in recent if b.state != "draft"],
            may_draft=queries.may(ctx, actor, Action.DRAFT_BLAST),
        )

    async def new(self, request: Request, actor: Account) -> Response:
        queries.require(self.c.ctx, actor, Action.DRAFT_BLAST)
        return self._form(request, actor, {})

    def _form(
        self,
        request: Request,
        actor: Account,
        values: dict[str, object],
        status: int = 200,
        message: str | None = None,
    ) -> Response:
        ctx = self.c.ctx
        return self.c.render(
            request,
            "sms_new.html",
            status,
            areas=queries.visible_areas(ctx, actor),
            values=values,
            message=message,
            exercise_possible=bool(ctx.settings.sms.test_numbers),
        )

    async def preview(self, request: Request, actor: Account) -> Response:
        form = request.state.form
        body = form_text(form, "text", MAX_TEXT)
        if not body.strip():
            return self.c.render(request, "sms_preview.html", preview=None)
        areas = [a for a in form.getlist("area") if isinstance(a, str)][:50]
        for code in areas:
            self.c.ctx.registry.get(code)
        preview = await self.c.call(
            live_preview,
            self.c.ctx,
            actor,
            body,
            areas,
            unaccented=bool(form.get("unaccented")),
            exercise=bool(form.get("exercise")),
        )
        return self.c.render(request, "sms_preview.html", preview=preview)

    async def draft(self, request: Request, actor: Account) -> Response:
        form = request.state.form
        body = form_text(form, "text", MAX_TEXT).strip()
        areas = [a for a in form.getlist("area") if isinstance(a, str)][:50]
        values = {
            "text": body,
            "areas": areas,
            "exercise": bool(form.get("exercise")),
            "unaccented": bool(form.get("unaccented")),
            "urgent": bool(form.get("urgent")),
        }
        _ = self.c.gettext(request)
        if not body or not areas:
            return self._form(
                request, actor, values, 400, _("Write the text and choose at least one area.")
            )
        try:
            preview = await self.c.call(
                operations.draft_blast,
                self.c.ctx,
                actor,
                areas=areas,
                text=body,
                unaccented=bool(values["unaccented"]),
                exercise=bool(values["exercise"]),
                priority=Priority.URGENT if values["urgent"] else Priority.ROUTINE,
            )
        except ValueError as exc:
            return self._form(request, actor, values, 400, str(exc))
        return RedirectResponse(f"{PREFIX}/sms/{preview.id}?done=drafted", status_code=303)

    async def detail(self, request: Request, actor: Account) -> Response:
        ctx = self.c.ctx
        blast_id = request.path_params["id"]
        found = await self.c.call(queries.blast, ctx, actor, blast_id)
        preview = await self.c.call(operations.blast_preview, ctx, actor, blast_id)
        status = await self.c.call(operations.blast_status, ctx, actor, blast_id)
        return self.c.render(
            request,
            "sms_detail.html",
            blast=found,
            preview=preview,
            delivery=status,
            areas=[ctx.registry.get(code) for code in found.areas],
            cost=operations.blast_cost(ctx, preview.per_carrier, preview.parts),
            may_approve=queries.may_approve_blast(ctx, actor, found),
            own=found.created_by_account == actor.id,
            may_cancel=(
                found.state not in ("cancelled",)
                and queries.may(ctx, actor, Action.CANCEL_BLAST, found.areas)
            ),
            done=request.query_params.get("done"),
        )

    async def status(self, request: Request, actor: Account) -> Response:
        found = await self.c.call(
            operations.blast_status, self.c.ctx, actor, request.path_params["id"]
        )
        return self.c.render(request, "sms_status.html", delivery=found)

    async def approve(self, request: Request, actor: Account) -> Response:
        blast_id = request.path_params["id"]
        await self.c.call(operations.approve_blast, self.c.ctx, actor, blast_id)
        return RedirectResponse(f"{PREFIX}/sms/{blast_id}?done=approved", status_code=303)

    async def cancel(self, request: Request, actor: Account) -> Response:
        blast_id = request.path_params["id"]
        await self.c.call(operations.cancel_blast, self.c.ctx, actor, blast_id)
        return RedirectResponse(f"{PREFIX}/sms/{blast_id}?done=cancelled", status_code=303)
