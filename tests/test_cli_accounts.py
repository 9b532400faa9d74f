"""The CLI acts as an account: the Unix login's or a token's, never a typed name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from broadcaster.accounts import Role
from broadcaster.cli.actor import unix_login
from broadcaster.store import accounts as store
from tests.account_fixtures import run_cli
from tests.sms_fixtures import seed_subscribers, write_config

PORTS = {"viettel": 2775}


@pytest.fixture
def sms_cli(tmp_path: Path, db_url: str, engine: Engine):
    """The CLI on a small SMS config, with an approver mapped to this Unix login."""
    config = write_config(tmp_path, db_url, PORTS)
    seed_subscribers(engine, 6)
    store.add_account(
        engine,
        name="Nguyễn Văn A",
        role=Role.APPROVER,
        areas=["19"],
        unix_login=unix_login(),
        now=datetime.now(UTC),
    )
    return lambda *args, expect=0: run_cli(config, *args, expect=expect)


@pytest.mark.parametrize(
    "typed",
    [
        "Nguyễn Văn A ",  # trailing space
        "Nguye\u0302\u0303n Va\u0306n A",  # NFD
        "Nguyễn\u200b Văn A",  # zero-width space
        "",  # empty
    ],
    ids=["trailing-space", "nfd", "zero-width-space", "empty"],
)
def test_self_approval_is_refused_whatever_name_is_typed(sms_cli, engine, typed: str) -> None:
    """Each of these `--by` forms used to approve one's own blast; the actor is the
    account, so `--by` only checks it, and the drafter's account may not approve."""
    blast = json.loads(
        sms_cli("sms", "draft", "--area", "167", "--text", "Test", "--format", "json").output
    )["id"]
    refused = sms_cli("sms", "approve", str(blast), "--by", typed, "--yes", expect=1).output
    assert "second account" in refused or "empty" in refused
    refused = sms_cli("sms", "approve", str(blast), "--yes", expect=1).output
    assert "second account must approve" in refused
    with engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM sms_blasts")).scalar_one() == "draft"
        assert conn.execute(text("SELECT count(*) FROM sms_messages")).scalar_one() == 0


def test_users_bootstrap_then_admin_adds_accounts_and_tokens(cli, engine, tmp_path) -> None:
    refused = cli("users", "add", "Op", "--role", "operator", "--area", "167", expect=1)
    assert "first account must be an admin" in refused.output
    made = cli(
        "users", "add", "Quản trị", "--role", "admin", "--area", "19", "--unix", unix_login()
    ).output
    assert "first admin" in made
    cli("users", "add", "Nguyễn Văn A", "--role", "operator", "--area", "167")
    clash = cli(
        "users", "add", "nguyễn văn a\u200b", "--role", "approver", "--area", "167", expect=1
    )
    assert "already" in clash.output
    token = cli("users", "token", "Nguyễn Văn A").output.strip()
    assert store.account_for_token(engine, token).name == "Nguyễn Văn A"
    listed = json.loads(cli("users", "list", "--format", "json").output)
    assert [(a["name"], a["role"]) for a in listed] == [
        ("Quản trị", "admin"),
        ("Nguyễn Văn A", "operator"),
    ]
    assert token not in cli("users", "list").output
    cli("users", "disable", "Nguyễn Văn A")
    token_file = tmp_path / "a.token"
    token_file.write_text(token)
    refused = cli(
        "level", "set", "167", "5.2", "--reason", "r", "--token-file", str(token_file), expect=1
    )
    assert "disabled" in refused.output
    actions = [a.action for a in store.load_audit(engine)]
    assert actions.count("accounts.manage") == 4
