"""Benchmark how long operator commands take to answer, against a bare Python start.

Run by hand: `.venv/bin/python bench/cli.py [--runs N]`. Prints figures; asserts
nothing. Each command runs as a fresh process (as an operator types it) on the
sample config copied into a temporary folder with a migrated SQLite database,
one level decision and one small blast, so `level show`, `status` and
`sms status` read real rows (`db upgrade` also saves the settings cache the
reading commands use, as on a server). `python -c pass` is measured in the same run, so
the ratio holds on a loaded machine too. Goal: every command ≤ 0.25 s,
within about 7× a bare Python start.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "broadcaster"
GOAL = 0.25
COMMANDS: list[tuple[str, list[str]]] = [
    ("--help", ["--help"]),
    ("level show", ["level", "show"]),
    ("level history", ["level", "history"]),
    ("status", ["status"]),
    ("sms status 1", ["sms", "status", "1"]),
    ("areas", ["areas"]),
]


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    began = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def prepare(folder: Path) -> dict[str, str]:
    """The sample config with a migrated database, a level decision and a blast."""
    for name in ("config.toml", "schedules", "audio", "examples"):
        source = REPO / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, folder / name)
    env = {**os.environ, "BROADCASTER_CONFIG": str(folder / "config.toml")}
    token = folder / "operator.token"
    for argv in (
        ["db", "upgrade"],
        ["subscribers", "import", "examples/subscribers.csv"],
        ["users", "add", "admin", "--role", "admin", "--area", "19", "--unix", getpass.getuser()],
        ["users", "add", "bench", "--role", "operator", "--area", "19"],
    ):
        subprocess.run([str(BIN), *argv], env=env, cwd=folder, check=True, capture_output=True)
    token.write_text(
        subprocess.run(
            [str(BIN), "users", "token", "bench"],
            env=env,
            cwd=folder,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    for argv in (
        ["level", "set", "167", "5.2", "--reason", "bench", "--token-file", str(token)],
        ["sms", "draft", "--area", "167", "--text", "bench", "--token-file", str(token)],
    ):
        subprocess.run([str(BIN), *argv], env=env, cwd=folder, check=True, capture_output=True)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        folder = Path(tmp)
        env = prepare(folder)
        subjects = [("python -c pass", [sys.executable, "-c", "pass"])]
        subjects += [(f"broadcaster {name}", [str(BIN), *argv]) for name, argv in COMMANDS]
        times: dict[str, list[float]] = {name: [] for name, _ in subjects}
        for _ in range(runs):  # interleaved, so a burst of load hits every subject alike
            for name, argv in subjects:
                times[name].append(timed(argv, env, folder))
    bare = min(times["python -c pass"])
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{runs} runs each, as subprocesses, interleaved; best and median wall time; "
        f"load average {load}"
    )
    print(f"{'command':<28} {'best':>8} {'median':>8} {'best / bare':>12}  goal ≤ {GOAL} s")
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        verdict = "" if name.startswith("python") else ("ok" if best <= GOAL else "SLOW")
        print(f"{name:<28} {best:>7.3f}s {median:>7.3f}s {best / bare:>11.1f}×  {verdict}")


if __name__ == "__main__":
    main()
