"""Accounts for tests: an operator mapped to the Unix login running the tests, and an
approver who acts through an API token file (the way a second person acts on the
same login). `people(db_url)` makes them in any database; the fixture of that name
does it for the test's own database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from broadcaster.accounts import Account, Role
from broadcaster.cli import main
from broadcaster.cli.actor import unix_login
from broadcaster.store import accounts as store
from broadcaster.store.db import make_engine, upgrade

OPERATOR = "Nguyễn Văn A"
APPROVER = "Trần Thị B"


@dataclass(frozen=True)
class People:
    """The operator (acting by Unix login) and the approver (acting by token file)."""

    operator: Account
    approver: Account
    approver_token: Path

    @property
    def as_approver(self) -> tuple[str, str]:
        """CLI arguments that make a command act as the approver."""
        return ("--token-file", str(self.approver_token))


def add_people(db_url: str, folder: Path, area: str = "19") -> People:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        now = datetime.now(UTC)
        operator = store.add_account(
            engine,
            name=OPERATOR,
            role=Role.OPERATOR,
            areas=[area],
            unix_login=unix_login(),
            now=now,
        )
        approver = store.add_account(
            engine, name=APPROVER, role=Role.APPROVER, areas=[area], unix_login=None, now=now
        )
        token = folder / "approver.token"
        token.write_text(store.issue_token(engine, approver.id, label="tests", now=now) + "\n")
        return People(operator, approver, token)
    finally:
        engine.dispose()


@pytest.fixture
def people(db_url: str, tmp_path: Path) -> People:
    return add_people(db_url, tmp_path)


def run_cli(config: Path, *args: str, expect: int = 0) -> Result:
    """Run `broadcaster --config CONFIG ARGS…` in-process; fails loudly on a crash."""
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == expect, result.output
    return result
