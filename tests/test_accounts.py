"""Accounts, roles, areas, the two-person rule and the audit, on real databases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from broadcaster import operations as ops
from broadcaster.accounts import Account, Action, Forbidden, NotAuthenticated, Role, check, name_key
from broadcaster.store import accounts as store
from broadcaster.store.levels import load_changes
from tests.sms_fixtures import NOW, seed_subscribers, settings_for, write_config


@pytest.fixture
def ctx(tmp_path: Path, db_url: str, engine: Engine) -> ops.Context:
    settings = settings_for(write_config(tmp_path, db_url, {"viettel": 1}))
    return ops.Context(settings, engine, clock=lambda: NOW)


def make(ctx: ops.Context, name: str, role: Role, *areas: str) -> Account:
    return store.add_account(
        ctx.engine, name=name, role=role, areas=areas or ("19",), unix_login=None, now=NOW
    )


# --- names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "Nguyễn Văn A ",  # trailing space
        "Nguye\u0302\u0303n Va\u0306n A",  # NFD
        "Nguyễn\u200b Văn A",  # zero-width space
        "NGUYỄN  VĂN a",  # case and a doubled space
        "\ufeffNguyễn Văn A",  # byte-order mark
    ],
)
def test_name_variants_share_one_identity_key(variant: str) -> None:
    assert name_key(variant) == name_key("Nguyễn Văn A")


@pytest.mark.parametrize("empty", ["", " ", "\u200b", "\u200d\u2060 \t"])
def test_empty_names_are_refused(empty: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        name_key(empty)


def test_look_alike_account_name_is_refused(ctx: ops.Context) -> None:
    make(ctx, "Nguyễn Văn A", Role.OPERATOR)
    with pytest.raises(store.AccountError, match="already"):
        make(ctx, "nguye\u0302\u0303n va\u0306n a\u200b ", Role.APPROVER)


# --- rules ------------------------------------------------------------------------


def test_account_acts_on_its_areas_and_those_below(ctx: ops.Context) -> None:
    district = Account(1, "d", Role.OPERATOR, frozenset({"167"}))
    check(district, Action.SET_LEVEL, ctx.registry, ["167", "05437"])
    with pytest.raises(Forbidden, match="not on 19"):
        check(district, Action.SET_LEVEL, ctx.registry, ["19"])
    commune = Account(2, "c", Role.OPERATOR, frozenset({"05437"}))
    with pytest.raises(Forbidden, match="not on 05440"):
        check(commune, Action.SET_LEVEL, ctx.registry, ["05440"])


def test_operator_cannot_approve_and_admin_cannot_draft(ctx: ops.Context) -> None:
    with pytest.raises(Forbidden, match="approver"):
        check(Account(1, "o", Role.OPERATOR, frozenset({"19"})), Action.APPROVE_BLAST, ctx.registry)
    with pytest.raises(Forbidden, match="sms.draft"):
        check(Account(1, "a", Role.ADMIN, frozenset({"19"})), Action.DRAFT_BLAST, ctx.registry)


def test_disabled_account_may_do_nothing(ctx: ops.Context) -> None:
    with pytest.raises(Forbidden, match="disabled"):
        check(
            Account(1, "o", Role.APPROVER, frozenset({"19"}), disabled=True),
            Action.READ,
            ctx.registry,
        )


# --- the two-person rule on blasts ------------------------------------------------


def test_drafter_cannot_approve_own_blast_even_as_approver(ctx: ops.Context) -> None:
    seed_subscribers(ctx.engine, 5, communes=["05437"])
    approver = make(ctx, "Nguyễn Văn A", Role.APPROVER)
    preview = ops.draft_blast(ctx, approver, areas=["05437"], text="Test")
    with pytest.raises(Forbidden, match="second account"):
        ops.approve_blast(ctx, approver, preview.id)
    assert _state(ctx.engine, preview.id) == "draft"


@pytest.mark.parametrize(
    "typed",
    ["Nguyễn Văn A ", "Nguye\u0302\u0303n Va\u0306n A", "Nguyễn\u200b Văn A", ""],
)
def test_self_approval_under_a_look_alike_name_is_refused(ctx: ops.Context, typed: str) -> None:
    """Each of these used to approve: a second account with the look-alike name cannot
    exist, and an empty name names no account at all."""
    seed_subscribers(ctx.engine, 5, communes=["05437"])
    drafter = make(ctx, "Nguyễn Văn A", Role.APPROVER)
    preview = ops.draft_blast(ctx, drafter, areas=["05437"], text="Test")
    with pytest.raises((store.AccountError, ValueError)):
        make(ctx, typed, Role.APPROVER)
    with pytest.raises(Forbidden):
        ops.approve_blast(ctx, drafter, preview.id)
    assert _state(ctx.engine, preview.id) == "draft"


def test_second_account_approves_and_both_are_audited_by_id(ctx: ops.Context) -> None:
    seed_subscribers(ctx.engine, 5, communes=["05437"])
    operator = make(ctx, "An", Role.OPERATOR, "167")
    approver = make(ctx, "Bình", Role.APPROVER, "167")
    preview = ops.draft_blast(ctx, operator, areas=["05437"], text="Test")
    assert ops.approve_blast(ctx, approver, preview.id) == 5
    with ctx.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT created_by_account, approved_by_account, approved_by "
                "FROM sms_blasts WHERE id = :id"
            ),
            {"id": preview.id},
        ).one()
    assert (row.created_by_account, row.approved_by_account) == (operator.id, approver.id)
    assert row.approved_by == "Bình"
    audit = store.load_audit(ctx.engine)
    assert [(a.account_id, a.action) for a in reversed(audit)] == [
        (operator.id, "sms.draft"),
        (approver.id, "sms.approve"),
    ]


def test_config_may_waive_the_second_account_but_not_the_approver_role(ctx: ops.Context) -> None:
    seed_subscribers(ctx.engine, 5, communes=["05437"])
    sms = ctx.settings.sms.model_copy(update={"require_second_operator": False})
    ctx = ops.Context(ctx.settings.model_copy(update={"sms": sms}), ctx.engine, ctx.clock)
    approver = make(ctx, "Bình", Role.APPROVER)
    operator = make(ctx, "An", Role.OPERATOR)
    own = ops.draft_blast(ctx, approver, areas=["05437"], text="Test")
    assert ops.approve_blast(ctx, approver, own.id) == 5
    other = ops.draft_blast(ctx, operator, areas=["05437"], text="Test")
    with pytest.raises(Forbidden, match="approver"):
        ops.approve_blast(ctx, operator, other.id)


def test_approver_outside_the_blast_areas_is_refused(ctx: ops.Context) -> None:
    seed_subscribers(ctx.engine, 5, communes=["05437", "05440"])
    operator = make(ctx, "An", Role.OPERATOR, "167")
    approver = make(ctx, "Bình", Role.APPROVER, "05437")
    preview = ops.draft_blast(ctx, operator, areas=["05437", "05440"], text="Test")
    with pytest.raises(Forbidden, match="05440"):
        ops.approve_blast(ctx, approver, preview.id)
    assert _state(ctx.engine, preview.id) == "draft"
    assert [a.action for a in store.load_audit(ctx.engine)] == ["sms.draft"]


# --- levels -------------------------------------------------------------------------


def test_operator_of_one_commune_cannot_set_another_and_nothing_is_written(
    ctx: ops.Context,
) -> None:
    operator = make(ctx, "An", Role.OPERATOR, "05437")
    with pytest.raises(Forbidden):
        ops.set_level(ctx, operator, area="05440", level="2", reason="r")
    assert load_changes(ctx.engine) == []
    change = ops.set_level(ctx, operator, area="05437", level="2", reason="cases")
    assert change.by == "An"
    with ctx.engine.connect() as conn:
        by_account = conn.execute(text("SELECT by_account FROM level_changes")).scalar_one()
    assert by_account == operator.id


# --- secrets and the audit ----------------------------------------------------------


def test_password_and_totp_authenticate_and_failures_are_audited(ctx: ops.Context) -> None:
    made = make(ctx, "An", Role.OPERATOR)
    uri = store.set_password(ctx.engine, made.id, "correct horse", totp=True)
    assert uri is not None and uri.startswith("otpauth://")
    secret = uri.split("secret=")[1].split("&")[0]
    code = pyotp.TOTP(secret).at(NOW)
    with pytest.raises(NotAuthenticated):
        store.authenticate(ctx.engine, "An", "wrong password", code, now=NOW)
    with pytest.raises(NotAuthenticated):
        store.authenticate(ctx.engine, "An", "correct horse", None, now=NOW)
    assert (
        store.authenticate(ctx.engine, " an", "correct horse", pyotp.TOTP(secret).now(), now=NOW).id
        == made.id
    )
    actions = [a.action for a in reversed(store.load_audit(ctx.engine))]
    assert actions == ["login.failed", "login.failed", "login"]


def test_five_failed_logins_lock_the_account_for_a_while(ctx: ops.Context) -> None:
    made = make(ctx, "An", Role.OPERATOR)
    store.set_password(ctx.engine, made.id, "correct horse")
    for _ in range(store.MAX_FAILURES):
        with pytest.raises(NotAuthenticated):
            store.authenticate(ctx.engine, "An", "guess", None, now=NOW)
    with pytest.raises(NotAuthenticated):
        store.authenticate(ctx.engine, "An", "correct horse", None, now=NOW)
    later = NOW + store.LOCKOUT + timedelta(seconds=1)
    assert store.authenticate(ctx.engine, "An", "correct horse", None, now=later).id == made.id
    assert store.load_audit(ctx.engine)[1].action == "login.locked"


def test_token_is_shown_once_and_stored_hashed(ctx: ops.Context) -> None:
    made = make(ctx, "An", Role.OPERATOR)
    token = store.issue_token(ctx.engine, made.id, label="t", now=NOW)
    assert store.account_for_token(ctx.engine, token).id == made.id
    with ctx.engine.connect() as conn:
        assert token not in str(conn.execute(text("SELECT * FROM api_tokens")).all())
    store.set_disabled(ctx.engine, made.id)
    with pytest.raises(NotAuthenticated):
        store.account_for_token(ctx.engine, token)
    with pytest.raises(NotAuthenticated):
        store.account_for_token(ctx.engine, token + "x")


def test_audit_rows_cannot_be_changed_or_deleted(ctx: ops.Context) -> None:
    store.record_audit(ctx.engine, 1, "x", "y", {}, now=NOW)
    for statement in ("UPDATE audit SET action = 'z'", "DELETE FROM audit"):
        with pytest.raises(DBAPIError, match="append-only"), ctx.engine.begin() as conn:
            conn.execute(text(statement))
    assert len(store.load_audit(ctx.engine)) == 1


def test_first_admin_only_through_bootstrap_while_none_exists(ctx: ops.Context) -> None:
    with pytest.raises(Forbidden, match="admin"):
        ops.add_account(ctx, None, name="An", role=Role.OPERATOR, areas=["19"])
    admin = ops.add_account(ctx, None, name="Root", role=Role.ADMIN, areas=["19"])
    with pytest.raises(Forbidden, match="an admin exists"):
        ops.add_account(ctx, None, name="Other", role=Role.ADMIN, areas=["19"])
    district_admin = ops.add_account(ctx, admin, name="D", role=Role.ADMIN, areas=["167"])
    with pytest.raises(Forbidden, match="not on 19"):
        ops.add_account(ctx, district_admin, name="Wide", role=Role.APPROVER, areas=["19"])


def _state(engine: Engine, blast_id: int) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT state FROM sms_blasts WHERE id = :id"), {"id": blast_id}
            ).scalar_one()
        )
