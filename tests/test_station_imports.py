"""The agent stays small: it imports nothing of the centre."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

HEAVY = (
    "sqlalchemy",
    "uvicorn",
    "starlette",
    "alembic",
    "apscheduler",
    "pydantic",
    "prometheus_client",
    "broadcaster.daemon",
    "broadcaster.config",
    "broadcaster.store",
)


def test_the_agent_imports_none_of_the_centre() -> None:
    probe = (
        "import sys, broadcaster.station.agent; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
        f"or m in {HEAVY!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", out


def test_station_run_as_a_process_loads_no_module_of_the_centre(tmp_path) -> None:
    agent = subprocess.Popen(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "broadcaster",
            "station",
            "run",
            "--centre",
            "http://127.0.0.1:9",
            "--station",
            "linh-thong",
            "--token",
            "t",
            "--cache",
            str(tmp_path / "cache"),
            "--mpv-option",
            "ao=null",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in agent.stdout:  # type: ignore[union-attr]
            if "station.agent_started" in line:
                break
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=15)
    loaded = {
        line.split("|")[-1].strip() for line in err.splitlines() if line.startswith("import time:")
    }
    assert "broadcaster.station.agent" in loaded
    assert not {m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY}, sorted(loaded)
