"""Operations that act: each checks, acts and audits in one transaction.

Each operation takes the `Context` (settings, database, clock) and the acting
`Account`, checks the account's role and areas (`broadcaster.accounts`),
applies the two-person rule by account id, acts, and writes its audit row in
the same transaction, so a refused or failed operation leaves nothing behind.
Faces only parse input and render results; none holds rules of its own.
Refusals raise `Forbidden` with a message for the person acting; bad input
raises `ValueError` (or a subclass) naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection, Engine, text

from broadcaster.accounts import (
    Account,
    Action,
    Forbidden,
    Role,
    check,
    check_grant,
    check_second_account,
)
from broadcaster.levels import LevelChange
from broadcaster.operations.context import Context, NotFound
from broadcaster.sms import blast as blasts
from broadcaster.sms.states import Priority
from broadcaster.store import accounts as store
from broadcaster.store.audio import Notice
from broadcaster.store.levels import set_level as store_set_level
from broadcaster.store.library import Version

if TYPE_CHECKING:
    from broadcaster.audio.publish import PublishReport
    from broadcaster.config import Settings
    from broadcaster.schedule_approval import Pending

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class NoticeIssued:
    """A notice just issued: live (with its publication) or awaiting a second account,
    and the SMS blasts its notice-triggered programmes drafted (or queued)."""

    notice: Notice
    published: PublishReport | None
    sms: tuple[blasts.Preview, ...] = ()
    sms_queued: bool = False


# --- levels ---------------------------------------------------------------------


def set_level(ctx: Context, actor: Account, *, area: str, level: str, reason: str) -> LevelChange:
    """Set the alert level of an area the actor covers; audited as `level.set`."""
    check(actor, Action.SET_LEVEL, ctx.registry, [area])
    now = ctx.now()
    with ctx.engine.begin() as conn:
        change = store_set_level(
            conn,
            ctx.registry,
            ctx.ladders,
            area=area,
            level=level,
            by=actor.name,
            reason=reason,
            now=now,
            by_account=actor.id,
        )
        _audit(
            conn,
            actor,
            Action.SET_LEVEL,
            f"area:{area}",
            now,
            level=level,
            previous=change.previous,
            reason=change.reason,
        )
    return change


# --- SMS blasts -----------------------------------------------------------------


def draft_blast(
    ctx: Context,
    actor: Account,
    *,
    areas: Sequence[str],
    text: str,
    unaccented: bool = False,
    priority: Priority = Priority.ROUTINE,
    exercise: bool = False,
) -> blasts.Preview:
    """Draft a blast to areas the actor covers; nothing is queued until a second account
    approves it. Returns the preview (recipients, encoding, parts, per carrier)."""
    if not areas:
        raise blasts.BlastError("name at least one area")
    check(actor, Action.DRAFT_BLAST, ctx.registry, areas)
    now = ctx.now()
    with ctx.engine.begin() as conn:
        preview = blasts.draft(
            conn,
            ctx.registry,
            ctx.router,
            ctx.settings.sms,
            areas=areas,
            body=text,
            unaccented=unaccented,
            priority=priority,
            by=actor.name,
            exercise=exercise,
            now=now,
        )
        _record_draft(
            conn,
            actor,
            Action.DRAFT_BLAST,
            preview,
            now,
            areas=list(areas),
            exercise=exercise,
            parts=preview.parts,
            priority=str(priority),
        )
    return preview


def blast_preview(ctx: Context, actor: Account, blast_id: int) -> blasts.Preview:
    """The preview of a blast in the actor's areas (what an approver sees before approving)."""
    check(actor, Action.READ, ctx.registry, _blast_areas(ctx.engine, blast_id))
    return blasts.preview(ctx.engine, ctx.router, ctx.settings.sms, blast_id)


def approve_blast(ctx: Context, actor: Account, blast_id: int) -> int:
    """Approve a draft as an approver covering all its areas and not its drafter (by
    account id); queues one message per recipient and returns how many."""
    now = ctx.now()
    with ctx.engine.begin() as conn:
        row = _blast_row(conn, blast_id)
        check(actor, Action.APPROVE_BLAST, ctx.registry, _areas_of(row))
        if ctx.settings.sms.require_second_operator:
            check_second_account(actor, row.created_by_account, row.created_by, f"blast {blast_id}")
        queued = blasts.approve(
            conn, ctx.router, ctx.settings.sms, blast_id, by=actor.name, now=now
        )
        _set_actor(conn, "sms_blasts", "approved_by_account", blast_id, actor)
        _audit(
            conn,
            actor,
            Action.APPROVE_BLAST,
            f"blast:{blast_id}",
            now,
            queued=queued,
            exercise=bool(row.exercise),
        )
    return queued


def cancel_blast(ctx: Context, actor: Account, blast_id: int) -> int:
    """Cancel a blast in the actor's areas at once (any role that may act there);
    returns how many messages will not be sent."""
    now = ctx.now()
    with ctx.engine.begin() as conn:
        row = _blast_row(conn, blast_id)
        check(actor, Action.CANCEL_BLAST, ctx.registry, _areas_of(row))
        cancelled = blasts.cancel(conn, blast_id, by=actor.name, now=now)
        _set_actor(conn, "sms_blasts", "cancelled_by_account", blast_id, actor)
        _audit(conn, actor, Action.CANCEL_BLAST, f"blast:{blast_id}", now, cancelled=cancelled)
    return cancelled


def correct_blast(
    ctx: Context, actor: Account, blast_id: int, *, text: str, unaccented: bool = False
) -> blasts.Preview:
    """Draft a correction of a blast in the actor's areas, to exactly those it may have
    reached; like any draft, a second account approves it."""
    from broadcaster.sms.correction import draft_correction

    now = ctx.now()
    with ctx.engine.begin() as conn:
        row = _blast_row(conn, blast_id)
        check(actor, Action.CORRECT_BLAST, ctx.registry, _areas_of(row))
        preview = draft_correction(
            conn,
            ctx.router,
            ctx.settings.sms,
            blast_id,
            body=text,
            unaccented=unaccented,
            by=actor.name,
            now=now,
        )
        _record_draft(conn, actor, Action.CORRECT_BLAST, preview, now, corrects=blast_id)
    return preview


def blast_status(ctx: Context, actor: Account, blast_id: int) -> dict[str, object]:
    """Counts of a blast's messages by state, for an account covering its areas."""
    check(actor, Action.READ, ctx.registry, _blast_areas(ctx.engine, blast_id))
    return blasts.status(ctx.engine, blast_id)


# --- notices --------------------------------------------------------------------


def issue_notice(
    ctx: Context,
    actor: Account,
    *,
    areas: Sequence[str],
    text: str | None = None,
    audio: Path | None = None,
) -> NoticeIssued:
    """Issue an emergency notice (spoken `text` or an `audio` file) to areas the actor
    covers. It airs at once only when the config needs no second account; the SMS
    of notice-triggered programmes are drafted by the same account."""
    from broadcaster.audio.notice import affected_stations, notice_audio
    from broadcaster.audio.publish import publisher
    from broadcaster.audio.render import normalise
    from broadcaster.store.audio import create_notice

    if not areas:
        raise ValueError("name at least one area")
    check(actor, Action.ISSUE_NOTICE, ctx.registry, areas)
    needs_approval = _notice_needs_approval(ctx.settings)
    path = notice_audio(ctx.settings.data_dir, audio=audio, text=text)
    from broadcaster.audio.library import file_sha256, probe_duration

    now = ctx.now()
    with ctx.engine.begin() as conn:
        notice = create_notice(
            conn,
            areas=areas,
            text=text,
            clip_file=str(path),
            clip_sha256=file_sha256(path),
            duration=probe_duration(path),
            by=actor.name,
            now=now,
            needs_approval=needs_approval,
            by_account=actor.id,
        )
        _audit(
            conn,
            actor,
            Action.ISSUE_NOTICE,
            f"notice:{notice.id}",
            now,
            areas=list(areas),
            text=text,
            state=notice.state.value,
        )
        previews = _notice_sms(ctx, conn, actor, areas, text, now) if text else []
    # Normalise now, while the notice waits for its approver, so approval only
    # republishes (three ffmpeg passes at approval made stations hear it 13-21 s late).
    pub = publisher(ctx.settings, ctx.engine)
    normalise(path, notice.clip_sha256, pub.target, pub.store)
    published = None
    if not needs_approval:
        published = _republish(ctx, affected_stations(ctx.registry, [notice]))
    return NoticeIssued(
        notice,
        published,
        tuple(previews),
        bool(previews) and not ctx.settings.sms.require_second_operator,
    )


def approve_notice(ctx: Context, actor: Account, notice_id: int) -> tuple[Notice, PublishReport]:
    """Approve a pending notice as a second account covering its areas; it airs at once."""
    from broadcaster.audio.notice import affected_stations
    from broadcaster.store.audio import approve_notice as store_approve

    now = ctx.now()
    with ctx.engine.begin() as conn:
        pending = _notice(conn, notice_id)
        check(actor, Action.APPROVE_NOTICE, ctx.registry, pending.areas)
        check_second_account(
            actor, _notice_drafter(conn, notice_id), pending.created_by, f"notice #{notice_id}"
        )
        notice = store_approve(conn, notice_id, by=actor.name, now=now, by_account=actor.id)
        _audit(conn, actor, Action.APPROVE_NOTICE, f"notice:{notice_id}", now)
    return notice, _republish(ctx, affected_stations(ctx.registry, [notice]))


def retract_notice(ctx: Context, actor: Account, notice_id: int) -> tuple[Notice, PublishReport]:
    """Take a notice off the air at once (any role that may act on its areas; stopping
    needs no second account); its stations are republished without it."""
    from broadcaster.audio.notice import affected_stations
    from broadcaster.store.audio import retract_notice as store_retract

    now = ctx.now()
    with ctx.engine.begin() as conn:
        notice = _notice(conn, notice_id)
        check(actor, Action.RETRACT_NOTICE, ctx.registry, notice.areas)
        notice = store_retract(conn, notice_id, by=actor.name, now=now)
        _audit(conn, actor, Action.RETRACT_NOTICE, f"notice:{notice_id}", now)
    log.warning(
        "audio.notice_retracted",
        notice=notice.id,
        by=actor.name,
        account=actor.id,
        areas=list(notice.areas),
    )
    return notice, _republish(ctx, affected_stations(ctx.registry, [notice]))


# --- schedules ------------------------------------------------------------------


@dataclass(frozen=True)
class ClipImported:
    """An import's version; `report` is the republication when it went on the air at
    once (no second account needed), None while it waits for one."""

    version: Version
    report: PublishReport | None


def import_clip(
    ctx: Context,
    actor: Account,
    source: Path,
    *,
    areas: Sequence[str] = (),
    **entry: Any,
) -> ClipImported:
    """Keep `source` in the shared library as a new version of its clip: its bytes first,
    then its row with the audit record. It airs, from whichever node schedules, once a
    second account approves it (unless the config waives that). A recorded bulletin names
    its relay programme's `areas`, which the importer and the approver must cover.
    `entry` holds `catalogue_entry`'s keywords (clip_id, title, language, kind, …)."""
    from broadcaster.audio.library import LibraryError, catalogue_entry
    from broadcaster.audio.sharing import node_library, shared_form
    from broadcaster.store import library, published

    check(actor, Action.IMPORT_CLIP, ctx.registry, areas)
    clip = catalogue_entry(node_library(ctx.settings, ctx.engine, fetch=False), source, **entry)
    current = library.current(ctx.engine, clip.id, clip.language)
    waiting = [v for v in current if v.state is library.VersionState.PENDING]
    if waiting and not entry.get("replace"):
        raise LibraryError(
            f"clip {clip.id!r} in {clip.language!r} has version #{waiting[0].version} "
            "awaiting approval; pass --replace to import another"
        )
    if published.missing_audio(ctx.engine, [clip.sha256]):
        with source.open("rb") as stored:
            published.put_audio(ctx.engine, clip.sha256, stored)
    live = not _needs_second_account(ctx.settings, ctx.settings.audio.clip_requires_approval)
    now = ctx.now()
    with ctx.engine.begin() as conn:
        number = library.add_version(
            conn,
            shared_form(clip, source),
            live=live,
            areas=tuple(areas),
            account_id=actor.id,
            account_name=actor.name,
            node=ctx.settings.node_name,
            now=now,
        )
        _audit(
            conn,
            actor,
            Action.IMPORT_CLIP,
            f"clip-version:{number}",
            now,
            clip=f"{clip.id}/{clip.language}",
            kind=clip.kind.value,
            sha256=clip.sha256,
            duration=round(clip.duration, 3),
            for_programme=clip.for_programme,
            airs_at=clip.airs_at,
            live=live,
        )
        version = _clip_version(conn, number)
    log.info(
        "audio.clip_imported",
        version=number,
        clip=f"{clip.id}/{clip.language}",
        by=actor.name,
        account=actor.id,
        live=live,
    )
    return ClipImported(version, _republish(ctx) if live else None)


def approve_clip(ctx: Context, actor: Account, number: int) -> tuple[Version, PublishReport]:
    """Put a pending clip version on the air as a second account (covering a recording's
    areas); the live version of its clip steps down in the same transaction, and every
    station is republished with it."""
    from broadcaster.store import library

    now = ctx.now()
    with ctx.engine.begin() as conn:
        pending = _clip_version(conn, number)
        check(actor, Action.APPROVE_CLIP, ctx.registry, pending.areas)
        check_second_account(
            actor, pending.imported_by, pending.imported_name, f"clip version #{number}"
        )
        version = library.approve_version(conn, number, account_id=actor.id, now=now)
        _audit(conn, actor, Action.APPROVE_CLIP, f"clip-version:{number}", now)
    log.info("audio.clip_approved", version=number, by=actor.name, account=actor.id)
    return version, _republish(ctx)


def withdraw_clip(ctx: Context, actor: Account, number: int) -> tuple[Version, PublishReport]:
    """Take a clip version off the air, or out of the queue, at once: one account of any
    role that may act on its areas (stopping needs no second account); every station is
    republished without it, the folder's clip of that id airing again if there is one."""
    from broadcaster.store import library

    now = ctx.now()
    with ctx.engine.begin() as conn:
        check(actor, Action.WITHDRAW_CLIP, ctx.registry, _clip_version(conn, number).areas)
        version = library.withdraw_version(conn, number, account_id=actor.id, now=now)
        _audit(conn, actor, Action.WITHDRAW_CLIP, f"clip-version:{number}", now)
    log.warning("audio.clip_withdrawn", version=number, by=actor.name, account=actor.id)
    return version, _republish(ctx)


def schedule_review(ctx: Context, actor: Account) -> Pending:
    """What accepting the schedule files now would change (SMS and emergency programmes
    added, changed, removed; SMS count and cost a day per level)."""
    from broadcaster.schedule_approval import pending

    check(actor, Action.READ, ctx.registry)
    return pending(ctx.settings, ctx.engine)


def approve_schedules(ctx: Context, actor: Account, *, sha256: str | None = None) -> Pending:
    """Accept the schedule files as they are now; the daemon runs them from then on.

    Needs an approver covering every area the added or changed SMS and
    emergency programmes reach. `sha256` (from the review shown) makes sure
    the files accepted are the ones the approver saw. Asks the daemon to reload.
    """
    from broadcaster.schedule_approval import pending
    from broadcaster.store import schedules as sets
    from broadcaster.store.dispatch import request_reload

    now = ctx.now()
    with ctx.engine.begin() as conn:
        found = pending(ctx.settings, conn)
        check(actor, Action.APPROVE_SCHEDULE, ctx.registry, found.areas)
        if sha256 is not None and sha256 != found.sha256:
            raise Forbidden("the schedule files changed since the review shown; review again")
        accepted = sets.record(
            conn, found.files, account_id=actor.id, now=now, note=f"{len(found.files)} files"
        )
        _audit(
            conn,
            actor,
            Action.APPROVE_SCHEDULE,
            f"schedules:{accepted.id}",
            now,
            sha256=found.sha256,
            files=sorted(found.files),
            **found.review.as_json(),
        )
    request_reload(ctx.engine)
    return found


# --- accounts -------------------------------------------------------------------


def login(ctx: Context, name: str, password: str, totp: str | None = None) -> Account:
    """Check a name, password and TOTP code (when the account has one) for the console;
    every failure is the same `NotAuthenticated`, counted, audited, and five in a row
    lock the account for a while."""
    return store.authenticate(ctx.engine, name, password, totp, now=ctx.now())


def add_account(
    ctx: Context,
    actor: Account | None,
    *,
    name: str,
    role: Role,
    areas: Sequence[str],
    unix_login: str | None = None,
) -> Account:
    """Create an account as an admin covering its areas; `actor=None` is the bootstrap
    path (allowed only while no enabled admin exists, for an admin account)."""
    for code in areas:
        ctx.registry.get(code)
    now = ctx.now()
    with ctx.engine.begin() as conn:
        if actor is None:
            if store.admin_exists(conn):
                raise Forbidden("an admin exists; accounts are added by an admin's account")
            if role is not Role.ADMIN:
                raise Forbidden("the first account must be an admin (--role admin)")
        else:
            check_grant(actor, ctx.registry, areas)
        made = store.add_account(
            conn, name=name, role=role, areas=areas, unix_login=unix_login, now=now
        )
        _audit(
            conn,
            actor or made,
            Action.MANAGE_ACCOUNTS,
            f"account:{made.id}",
            now,
            op="add",
            name=made.name,
            role=made.role.value,
            areas=sorted(made.areas),
            unix_login=unix_login,
            bootstrap=actor is None,
        )
    return made


def disable_account(ctx: Context, actor: Account, ref: str | int) -> Account:
    """Disable an account in the admin's areas: its CLI login, tokens and sessions stop."""
    now = ctx.now()
    with ctx.engine.begin() as conn:
        target = store.get_account(conn, ref)
        check_grant(actor, ctx.registry, target.areas)
        done = store.set_disabled(conn, target.id)
        _audit(conn, actor, Action.MANAGE_ACCOUNTS, f"account:{target.id}", now, op="disable")
    return done


def set_password(
    ctx: Context, actor: Account, ref: str | int, password: str, *, totp: bool | None = None
) -> str | None:
    """Set a password (one's own, or as an admin over the account's areas); `totp=True`
    returns a new TOTP provisioning URI to show once."""
    now = ctx.now()
    with ctx.engine.begin() as conn:
        target = store.get_account(conn, ref)
        if target.id != actor.id:
            check_grant(actor, ctx.registry, target.areas)
        uri = store.set_password(conn, target.id, password, totp=totp)
        _audit(
            conn,
            actor,
            Action.MANAGE_ACCOUNTS,
            f"account:{target.id}",
            now,
            op="password",
            totp=totp,
        )
    return uri


def issue_token(ctx: Context, actor: Account, ref: str | int, *, label: str = "") -> str:
    """Make an API token for an account (one's own, or as an admin over its areas);
    the token is returned once and only its hash is kept."""
    now = ctx.now()
    with ctx.engine.begin() as conn:
        target = store.get_account(conn, ref)
        if target.id != actor.id:
            check_grant(actor, ctx.registry, target.areas)
        if target.disabled:
            raise Forbidden(f"account {target.name!r} is disabled")
        token = store.issue_token(conn, target.id, label=label or "cli", now=now)
        _audit(
            conn,
            actor,
            Action.MANAGE_ACCOUNTS,
            f"account:{target.id}",
            now,
            op="token",
            label=label,
        )
    return token


# --- helpers --------------------------------------------------------------------


def _audit(
    conn: Connection, actor: Account, action: Action, target: str, now: datetime, **detail: Any
) -> None:
    store.record_audit(conn, actor.id, action.value, target, detail, now=now)


def _record_draft(
    conn: Connection,
    actor: Account,
    action: Action,
    preview: blasts.Preview,
    now: datetime,
    **detail: Any,
) -> None:
    """A drafted blast names its account, and the audit trail says who drafted what for whom."""
    _set_actor(conn, "sms_blasts", "created_by_account", preview.id, actor)
    _audit(conn, actor, action, f"blast:{preview.id}", now, recipients=preview.recipients, **detail)


def _set_actor(conn: Connection, table: str, column: str, row_id: int, actor: Account) -> None:
    conn.execute(
        text(f"UPDATE {table} SET {column} = :a WHERE id = :id"), {"a": actor.id, "id": row_id}
    )


def _blast_row(conn: Connection, blast_id: int) -> Any:
    row = conn.execute(
        text("SELECT * FROM sms_blasts WHERE id = :id"), {"id": blast_id}
    ).one_or_none()
    if row is None:
        raise NotFound(f"no blast {blast_id}")
    return row


def _areas_of(row: Any) -> list[str]:
    import json

    return list(json.loads(row.areas)["areas"])


def _blast_areas(engine: Engine, blast_id: int) -> list[str]:
    with engine.connect() as conn:
        return _areas_of(_blast_row(conn, blast_id))


def _notice(conn: Connection, notice_id: int) -> Notice:
    from broadcaster.store.audio import load_notice

    try:
        return load_notice(conn, notice_id)
    except ValueError as exc:
        raise NotFound(str(exc)) from None


def _notice_drafter(conn: Connection, notice_id: int) -> int | None:
    return conn.execute(
        text("SELECT created_by_account FROM audio_notices WHERE id = :id"), {"id": notice_id}
    ).scalar_one_or_none()


def _notice_needs_approval(settings: Settings) -> bool:
    return _needs_second_account(settings, settings.audio.notice_requires_approval)


def _needs_second_account(settings: Settings, specific: bool | None) -> bool:
    """A key of its own where set; the SMS rule otherwise, so one switch serves a site."""
    return settings.sms.require_second_operator if specific is None else specific


def _clip_version(conn: Connection, number: int) -> Version:
    from broadcaster.store.library import load_version

    version = load_version(conn, number)
    if version is None:
        raise NotFound(f"no clip version #{number}")
    return version


def _notice_sms(
    ctx: Context,
    conn: Connection,
    actor: Account,
    areas: Sequence[str],
    body: str,
    now: datetime,
) -> list[blasts.Preview]:
    """Draft the SMS of notice-triggered programmes (seed 003) as the notice's account."""
    from broadcaster.schedule_files import ScheduleError, load_programmes
    from broadcaster.sms.scheduled import draft_notice_sms

    try:
        programmes = load_programmes(ctx.settings)
    except ScheduleError as exc:  # the loudspeaker notice stands; say why no SMS followed
        log.warning("notice.sms_skipped", detail=str(exc))
        return []
    previews = draft_notice_sms(
        ctx.settings, conn, programmes, areas=list(areas), text=body, by=actor.name, now=now
    )
    for preview in previews:
        _record_draft(conn, actor, Action.DRAFT_BLAST, preview, now, areas=list(areas), notice=True)
        if not ctx.settings.sms.require_second_operator:  # the config waives the second account
            queued = blasts.approve(
                conn, ctx.router, ctx.settings.sms, preview.id, by=actor.name, now=now
            )
            _set_actor(conn, "sms_blasts", "approved_by_account", preview.id, actor)
            _audit(
                conn,
                actor,
                Action.APPROVE_BLAST,
                f"blast:{preview.id}",
                now,
                queued=queued,
                waived="sms.require_second_operator = false",
            )
    return previews


def _republish(ctx: Context, only: set[str] | None = None) -> PublishReport:
    from broadcaster.audio.notice import republish
    from broadcaster.audio.publish import publisher
    from broadcaster.audio.sharing import node_library

    return republish(
        ctx.engine,
        ctx.registry,
        publisher(ctx.settings, ctx.engine),
        node_library(ctx.settings, ctx.engine),
        now=ctx.now(),
        only=only,
    )
