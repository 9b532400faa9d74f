"""The pure core (occurrences, programmes, planner, slot layout, clash check, numbers)
loads without the config layer, the store or the network."""

from __future__ import annotations

import subprocess
import sys

CORE = ["broadcaster.occurrence", "broadcaster.programmes", "broadcaster.planner",
        "broadcaster.audio.playlist", "broadcaster.clashes", "broadcaster.sms.numbers"]
SHELL = ["broadcaster.config", "broadcaster.schedules", "broadcaster.store", "sqlalchemy",
         "httpx", "structlog"]


def test_the_pure_core_imports_neither_the_config_nor_the_store():
    code = (f"import sys\nfor m in {CORE!r}: __import__(m)\n"
            f"print(sorted(m for m in {SHELL!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
