"""The one operations layer: every face (CLI, `/api/v1`, `/console/`) acts through here.

Each operation takes the `Context` (settings, database, clock) and the acting
`Account`, checks the account's role and areas (`broadcaster.accounts`),
applies the two-person rule by account id, acts, and writes its audit row in
the same transaction, so a refused or failed operation leaves nothing behind.
Faces only parse input and render results; none holds rules of its own.
Refusals raise `Forbidden` with a message for the person acting, a missing
blast or notice `NotFound`, bad input `ValueError` naming what is wrong.
"""

from broadcaster.operations.acts import (
    ClipImported,
    NoticeIssued,
    add_account,
    approve_blast,
    approve_clip,
    approve_notice,
    approve_schedules,
    blast_preview,
    blast_status,
    cancel_blast,
    correct_blast,
    disable_account,
    draft_blast,
    import_clip,
    issue_notice,
    issue_token,
    login,
    retract_notice,
    schedule_review,
    set_level,
    set_password,
    withdraw_clip,
)
from broadcaster.operations.context import Context, NotFound, utc_now
from broadcaster.operations.reads import (
    TextPreview,
    asrun,
    audit,
    blast_cost,
    level,
    levels,
    notices,
    plan_day,
    stations,
    text_preview,
)

__all__ = [
    "ClipImported",
    "Context",
    "NotFound",
    "NoticeIssued",
    "TextPreview",
    "add_account",
    "approve_blast",
    "approve_clip",
    "approve_notice",
    "approve_schedules",
    "asrun",
    "audit",
    "blast_cost",
    "blast_preview",
    "blast_status",
    "cancel_blast",
    "correct_blast",
    "disable_account",
    "draft_blast",
    "import_clip",
    "issue_notice",
    "issue_token",
    "level",
    "levels",
    "login",
    "notices",
    "plan_day",
    "retract_notice",
    "schedule_review",
    "set_level",
    "set_password",
    "stations",
    "text_preview",
    "utc_now",
    "withdraw_clip",
]
