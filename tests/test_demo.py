"""scripts/demo stops with a clear reason instead of waiting: its fast failure paths.

The full run (`scripts/demo --check`: delivered blast, served and played playlist)
takes about a minute and is run by .ci/run on a fresh venv, not by the suite.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_demo_check_stops_at_once_naming_a_taken_smsc_port(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = {
            **os.environ,
            "BROADCASTER_CONFIG": str(REPO / "config.toml"),
            "BROADCASTER_CARRIERS_VIETTEL_PORT": str(port),
            "TMPDIR": str(tmp_path),
        }
        done = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "demo"), "--check"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        f"port 127.0.0.1:{port}, needed by the test SMSC for carrier viettel, is taken"
        in done.stderr
    )
    assert "$ broadcaster" not in done.stdout  # nothing was started or written
