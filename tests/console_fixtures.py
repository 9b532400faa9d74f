"""The console on a real database with the sample district: accounts, logins, forms.

`console_site` serves the real ASGI console in-process (Starlette's TestClient)
for fast tests of its machinery; the browser tests run it inside a real daemon.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from broadcaster.accounts import Account, Role
from broadcaster.config import Settings, load_settings
from broadcaster.console import make_console
from broadcaster.operations import Context
from broadcaster.store import accounts as store
from tests.conftest import REPO, write_config

PASSWORD = "mật khẩu đủ dài 1"
OPERATOR = "Nguyễn Văn An"
APPROVER = "Trần Thị Bình"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def sample_config(tmp_path: Path, db_url: str, extra: str = "") -> Path:
    """The sample config (Định Hóa, 24 communes) on the test database, sample schedules."""
    config = write_config(tmp_path, db_url)
    with config.open("a", encoding="utf-8") as out:
        out.write(f'\n[planner]\nschedules = "{REPO / "schedules"}"\n{extra}\n')
    return config


def add_account(engine: Engine, name: str, role: Role, areas: list[str]) -> Account:
    account = store.add_account(
        engine, name=name, role=role, areas=areas, unix_login=None, now=datetime.now(UTC)
    )
    store.set_password(engine, account.id, PASSWORD)
    return account


@dataclass
class Site:
    settings: Settings
    engine: Engine
    operator: Account
    approver: Account

    def client(self) -> TestClient:
        app = Starlette(
            routes=[Mount("/console", make_console(Context(self.settings, self.engine)))]
        )
        return TestClient(app, follow_redirects=False)

    def login(
        self, name: str, password: str = PASSWORD, client: TestClient | None = None
    ) -> TestClient:
        client = client or self.client()
        token = csrf_of(client.get("/console/login").text)
        answer = client.post(
            "/console/login", data={"csrf": token, "name": name, "password": password}
        )
        assert answer.status_code == 303, answer.text
        return client


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "the page has no CSRF field"
    return found.group(1)


@pytest.fixture
def console_site(tmp_path: Path, db_url: str, engine: Engine) -> Iterator[Site]:
    settings = load_settings(sample_config(tmp_path, db_url))
    yield Site(
        settings,
        engine,
        add_account(engine, OPERATOR, Role.OPERATOR, ["167"]),
        add_account(engine, APPROVER, Role.APPROVER, ["167"]),
    )
