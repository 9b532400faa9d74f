"""`/api/v1`: the operations layer over HTTP, for the console and the province's systems.

Every request carries `Authorization: Bearer TOKEN` (`broadcaster users token
NAME`); the token's account acts, under the same rules as on the CLI, because
every route calls `broadcaster.operations`. Errors are JSON `{"error": …}`:
401 without a valid token, 403 outside one's role or areas (nothing written),
404 for an unknown blast, notice or area, 422 for input that cannot be used.
Handlers are plain functions, run in the thread pool: the store is synchronous.
"""

from __future__ import annotations

import base64
import binascii
import subprocess
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from broadcaster import operations as ops
from broadcaster.accounts import Account, Forbidden, NotAuthenticated
from broadcaster.api import models as m
from broadcaster.audio.library import LibraryError
from broadcaster.levels import InForce
from broadcaster.occurrence import content_to_json
from broadcaster.schedule_files import ScheduleError
from broadcaster.sms.states import Priority
from broadcaster.store.accounts import account_for_token

log = structlog.get_logger(__name__)
Id = Annotated[int, PathParam(ge=1, le=m.MAX_ID)]
Area = Annotated[str, PathParam(min_length=1, max_length=32)]
UNUSABLE = (ValueError, LibraryError, ScheduleError, subprocess.CalledProcessError)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": m.Error, "description": text}
    for code, text in (
        (401, "no valid bearer token"),
        (403, "outside your role or areas"),
        (404, "no such blast, notice or area"),
        (422, "input cannot be used"),
    )
}
_bearer = HTTPBearer(auto_error=False, description="an account's token: `broadcaster users token`")


def make_api(ctx: ops.Context) -> FastAPI:
    """Build the API on an operations context; mount it at `/api/v1`."""
    api = FastAPI(
        title="broadcaster API",
        version="1",
        description=__doc__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        responses=ERRORS,
    )
    api.state.ctx = ctx
    _errors(api)
    _routes(api, ctx)
    return api


def _actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Account:
    if credentials is None:
        raise NotAuthenticated(
            "send `Authorization: Bearer TOKEN` (`broadcaster users token NAME`)"
        )
    return account_for_token(request.app.state.ctx.engine, credentials.credentials)


Actor = Annotated[Account, Depends(_actor)]


def _errors(api: FastAPI) -> None:
    def reply(status: int, message: str, **extra: Any) -> JSONResponse:
        return JSONResponse(
            {"error": message, **extra},
            status_code=status,
            headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
        )

    @api.exception_handler(NotAuthenticated)
    def _401(_: Request, exc: NotAuthenticated) -> JSONResponse:
        return reply(401, str(exc))

    @api.exception_handler(Forbidden)
    def _403(_: Request, exc: Forbidden) -> JSONResponse:
        log.info("api.forbidden", detail=str(exc))
        return reply(403, str(exc))

    @api.exception_handler(LookupError)
    def _404(_: Request, exc: LookupError) -> JSONResponse:
        return reply(404, str(exc).strip("'\""))

    for kind in UNUSABLE:
        api.add_exception_handler(kind, lambda _, exc: reply(422, str(exc) or type(exc).__name__))

    @api.exception_handler(RequestValidationError)
    def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return reply(
            422,
            f"{where}: {first.get('msg', 'invalid')}",
            detail=[{k: e.get(k) for k in ("loc", "msg", "type")} for e in errors],
        )

    @api.exception_handler(HTTPException)
    def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return reply(exc.status_code, str(exc.detail))


def _routes(api: FastAPI, ctx: ops.Context) -> None:  # noqa: C901 - one place lists the routes
    @api.get("/me", response_model=m.AccountOut, tags=["accounts"])
    def me(actor: Actor) -> dict[str, object]:
        """The account the token belongs to."""
        return actor.as_json()

    @api.get("/areas", response_model=list[m.AreaOut], tags=["levels"])
    def areas(actor: Actor) -> list[dict[str, object]]:
        """Every area you cover, in tree order, with the level in force."""
        return [_area(ctx, f) for f in ops.levels(ctx, actor)]

    @api.get("/areas/{code}", response_model=m.AreaOut, tags=["levels"])
    def area(code: Area, actor: Actor) -> dict[str, object]:
        """One area and the level in force there."""
        return _area(ctx, ops.level(ctx, actor, code))

    @api.put("/areas/{code}/level", response_model=m.LevelChangeOut, tags=["levels"])
    def set_level(code: Area, body: m.LevelIn, actor: Actor) -> dict[str, object]:
        """Set the level of an area you cover; the areas below follow unless they have their own."""
        change = ops.set_level(ctx, actor, area=code, level=body.level, reason=body.reason)
        return {
            "area": change.area,
            "level": change.level,
            "previous": change.previous,
            "at": change.at,
            "by": change.by,
            "reason": change.reason,
        }

    @api.get("/plan", response_model=list[m.OccurrenceOut], tags=["plan"])
    def plan(
        actor: Actor,
        area: Annotated[str, Query(min_length=1, max_length=32)],
        day: Annotated[date | None, Query()] = None,
    ) -> list[dict[str, object]]:
        """What is planned on a local day (default today) on, above and below an area."""
        local = day or ctx.now().astimezone(ctx.settings.tz).date()
        return [
            {
                "programme": o.programme,
                "channel": o.channel.value,
                "area": o.area,
                "at": o.at,
                "priority": o.priority.value,
                "level": o.level,
                "duration_seconds": int(o.duration.total_seconds()) if o.duration else None,
                "content": content_to_json(o.content),
            }
            for o in ops.plan_day(ctx, actor, local, area)
        ]

    @api.post("/sms/preview", response_model=m.TextPreviewOut, tags=["sms"])
    def sms_preview(body: m.TextIn, actor: Actor) -> dict[str, object]:
        """How a text would go out: encoding, parts, and what forces UCS-2. Stores nothing."""
        found = ops.text_preview(ctx, actor, body.text, body.unaccented)
        return {
            "encoding": found.encoding,
            "parts": found.parts,
            "characters": found.characters,
            "ucs2_characters": list(found.ucs2_characters),
        }

    @api.post(
        "/sms/blasts",
        response_model=m.BlastPreviewOut,
        status_code=201,
        tags=["sms"],
        responses={
            201: {
                "description": "the draft's preview",
                "links": _links(
                    "blast_id", "blast_status", "blast_preview", "approve_blast", "cancel_blast"
                ),
            }
        },
    )
    def draft(body: m.BlastIn, actor: Actor) -> dict[str, object]:
        """Draft a blast to areas you cover; a second account approves it before it sends."""
        text = ops.text_preview(ctx, actor, body.text, body.unaccented)
        preview = ops.draft_blast(
            ctx,
            actor,
            areas=body.areas,
            text=body.text,
            unaccented=body.unaccented,
            priority=Priority(body.priority),
            exercise=body.exercise,
        )
        return _blast_preview(ctx, preview, text.ucs2_characters)

    @api.get(
        "/sms/blasts/{blast_id}",
        response_model=m.BlastStatusOut,
        tags=["sms"],
        operation_id="blast_status",
    )
    def blast_status(blast_id: Id, actor: Actor) -> dict[str, object]:
        """A blast's state and its messages counted by state, overall and per carrier."""
        report = ops.blast_status(ctx, actor, blast_id)
        fixed = {"id", "state", "exercise", "priority", "total", "per_carrier", "corrects"}
        return {
            **{k: report.get(k) for k in fixed},
            "counts": {k: v for k, v in report.items() if k not in fixed and isinstance(v, int)},
        }

    @api.get(
        "/sms/blasts/{blast_id}/preview",
        response_model=m.BlastPreviewOut,
        tags=["sms"],
        operation_id="blast_preview",
    )
    def blast_preview(blast_id: Id, actor: Actor) -> dict[str, object]:
        """What approving a blast sends: recipients, parts, cost (what an approver sees)."""
        return _blast_preview(ctx, ops.blast_preview(ctx, actor, blast_id), ())

    @api.post(
        "/sms/blasts/{blast_id}/approve",
        response_model=m.BlastApprovedOut,
        tags=["sms"],
        operation_id="approve_blast",
    )
    def approve(blast_id: Id, actor: Actor) -> dict[str, object]:
        """Approve a draft as a second account (an approver covering its areas)."""
        return {"id": blast_id, "queued": ops.approve_blast(ctx, actor, blast_id)}

    @api.post(
        "/sms/blasts/{blast_id}/cancel",
        response_model=m.BlastCancelledOut,
        tags=["sms"],
        operation_id="cancel_blast",
    )
    def cancel(blast_id: Id, actor: Actor) -> dict[str, object]:
        """Cancel a blast at once: nothing not yet submitted goes out."""
        return {"id": blast_id, "cancelled": ops.cancel_blast(ctx, actor, blast_id)}

    @api.post(
        "/sms/blasts/{blast_id}/correct",
        response_model=m.BlastPreviewOut,
        status_code=201,
        tags=["sms"],
    )
    def correct(blast_id: Id, body: m.TextIn, actor: Actor) -> dict[str, object]:
        """Draft a correction to exactly those the blast may have reached; a second
        account approves it like any draft."""
        text = ops.text_preview(ctx, actor, body.text, body.unaccented)
        preview = ops.correct_blast(
            ctx, actor, blast_id, text=body.text, unaccented=body.unaccented
        )
        return _blast_preview(ctx, preview, text.ucs2_characters)

    @api.get("/notices", response_model=list[m.NoticeOut], tags=["notices"])
    def notices(
        actor: Actor, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[dict[str, object]]:
        """The newest notices in your areas."""
        return [_notice(n) for n in ops.notices(ctx, actor, limit)]

    @api.post(
        "/notices",
        response_model=m.NoticeIssuedOut,
        status_code=201,
        tags=["notices"],
        responses={
            201: {
                "description": "the notice issued",
                "links": _links("notice_id", "approve_notice", source="$response.body#/notice/id"),
            }
        },
    )
    def issue(body: m.NoticeIn, actor: Actor) -> dict[str, object]:
        """Issue an emergency notice: `text` (spoken) or `audio_base64`; it airs once a
        second account approves it (unless the config needs none)."""
        if (body.text is None) == (body.audio_base64 is None):
            raise ValueError("give exactly one of text or audio_base64")
        with tempfile.TemporaryDirectory() as tmp:
            audio = None
            if body.audio_base64 is not None:
                audio = Path(tmp) / ("upload" + body.audio_suffix)
                audio.write_bytes(_decode(body.audio_base64))
            issued = ops.issue_notice(ctx, actor, areas=body.areas, text=body.text, audio=audio)
        return {
            "notice": _notice(issued.notice),
            "on_air_stations": issued.published.stations if issued.published else None,
            "sms_blasts": [p.id for p in issued.sms],
            "sms_queued": issued.sms_queued,
        }

    @api.post(
        "/notices/{notice_id}/approve",
        response_model=m.NoticeOut,
        tags=["notices"],
        operation_id="approve_notice",
    )
    def approve_notice(notice_id: Id, actor: Actor) -> dict[str, object]:
        """Approve a pending notice as a second account; it goes on the air at once."""
        notice, _ = ops.approve_notice(ctx, actor, notice_id)
        return _notice(notice)

    @api.post("/notices/{notice_id}/retract", response_model=m.NoticeOut, tags=["notices"])
    def retract_notice(notice_id: Id, actor: Actor) -> dict[str, object]:
        """Take a notice off the air at once (no second account needed)."""
        notice, _ = ops.retract_notice(ctx, actor, notice_id)
        return _notice(notice)

    @api.get("/stations", response_model=list[m.StationOut], tags=["stations"])
    def stations(actor: Actor) -> list[dict[str, object]]:
        """Stations and vans in your areas, with their current or next slot."""
        return ops.stations(ctx, actor)

    @api.get("/asrun", response_model=list[m.AsRunOut], tags=["stations"])
    def asrun(
        actor: Actor,
        day: Annotated[date | None, Query()] = None,
        station: Annotated[str | None, Query(max_length=64)] = None,
    ) -> list[dict[str, object]]:
        """What stations in your areas reported airing on a local day (default today)."""
        local = day or ctx.now().astimezone(ctx.settings.tz).date()
        return [vars(r) for r in ops.asrun(ctx, actor, local, station)]

    @api.get("/audit", response_model=list[m.AuditOut], tags=["accounts"])
    def audit(
        actor: Actor, limit: Annotated[int, Query(ge=1, le=10_000)] = 200
    ) -> list[dict[str, object]]:
        """The newest audit rows: which account did what, when."""
        return [vars(a) for a in ops.audit(ctx, actor, limit)]

    @api.get("/schedules/review", response_model=m.ScheduleReviewOut, tags=["schedules"])
    def schedule_review(actor: Actor) -> dict[str, object]:
        """What accepting the schedule files now would change for the public."""
        return _review(ops.schedule_review(ctx, actor))

    @api.post("/schedules/approve", response_model=m.ScheduleReviewOut, tags=["schedules"])
    def schedule_approve(body: m.ScheduleApproveIn, actor: Actor) -> dict[str, object]:
        """Accept the schedule files whose review had this sha256."""
        return _review(ops.approve_schedules(ctx, actor, sha256=body.sha256))


def _links(
    parameter: str, *operations: str, source: str = "$response.body#/id"
) -> dict[str, object]:
    """OpenAPI links from a created resource to the operations on it (clients and
    schemathesis's stateful phase follow them)."""
    return {op: {"operationId": op, "parameters": {parameter: source}} for op in operations}


def _area(ctx: ops.Context, f: InForce) -> dict[str, object]:
    a = ctx.registry.get(f.area)
    return {
        "code": a.code,
        "name": a.name,
        "kind": a.kind.value,
        "parent": a.parent,
        "ladder": a.ladder,
        "level": f.level,
        "since": f.since,
        "by": f.by,
        "reason": f.reason,
        "inherited_from": f.inherited_from,
    }


def _blast_preview(ctx: ops.Context, preview: Any, forcing: tuple[str, ...]) -> dict[str, object]:
    return {
        **preview.as_json(),
        "cost": ops.blast_cost(ctx, preview.per_carrier, preview.parts),
        "currency": ctx.settings.sms.currency,
        "ucs2_characters": list(forcing),
    }


def _notice(n: Any) -> dict[str, object]:
    return {
        "id": n.id,
        "areas": list(n.areas),
        "text": n.text,
        "state": str(n.state),
        "duration": n.duration,
        "created_by": n.created_by,
        "created_at": n.created_at,
        "approved_by": n.approved_by,
        "approved_at": n.approved_at,
    }


def _review(found: Any) -> dict[str, object]:
    return {"sha256": found.sha256, "files": sorted(found.files), **found.review.as_json()}


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("audio_base64 is not base64") from None
