"""The agent stays small: it imports nothing of the centre."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

HEAVY = ("sqlalchemy", "uvicorn", "starlette", "alembic", "apscheduler", "pydantic",
         "prometheus_client", "broadcaster.daemon", "broadcaster.config", "broadcaster.store")


def test_the_agent_imports_none_of_the_centre() -> None:
    probe = ("import sys, broadcaster.station.agent; "
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
             f"or m in {HEAVY!r}))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]", out
