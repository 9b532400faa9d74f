"""Run the daemon as a real process against a real database, and watch it.

Readiness is awaited on a real sd_notify socket (the daemon sends READY=1),
and state is read from the database the daemon writes, never from its memory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import REPO, write_config

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def clock_times(start: datetime, count: int, step: timedelta = timedelta(seconds=1)) -> str:
    """TOML list of local HH:MM:SS times from `start`, for programmes due in seconds."""
    times = [(start + i * step).astimezone(HCM).strftime("%H:%M:%S") for i in range(count)]
    return "[" + ", ".join(f'"{t}"' for t in times) + "]"


def task_schedule(programme: str, times: str, command: str, level: str = "5.1") -> str:
    """A task programme on district 167 running `sh -c command` at `times`."""
    argv = json.dumps(["sh", "-c", command])
    return textwrap.dedent(f"""\
        [[programme]]
        id = "{programme}"
        channel = "task"
        areas = ["167"]
        content = {{ command = {argv} }}
        [programme.levels."{level}"]
        times = {times}
        """)


def wait_for(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    seen: Callable[[], object] | None = None,
) -> Any:
    """Poll a condition on real state (file, database) until it holds; on timeout say
    what `seen` shows of that state."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            shown = f"; seen: {seen()}" if seen is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{shown}")
        time.sleep(0.05)


def node_env(name: str, port: int, data_dir: Path | None = None) -> dict[str, str]:
    """What sets a node apart among several on one machine: its name, its station API
    port and, as on a machine of its own, its data folder."""
    env = {"BROADCASTER_NODE": name, "BROADCASTER_HTTP_BIND": f"127.0.0.1:{port}"}
    if data_dir is not None:
        env["BROADCASTER_DATA_DIR"] = str(data_dir)
    return env


@dataclass
class DaemonProcess:
    config: Path
    notify_path: Path
    process: subprocess.Popen[bytes] | None = None
    messages: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def start(self, timeout: float = 60) -> DaemonProcess:
        return self.launch(timeout).ready(timeout)

    def launch(self, timeout: float = 60) -> DaemonProcess:
        """Start the process without waiting for it: several daemons start side by side."""
        if self.notify_path.exists():
            self.notify_path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self.notify_path))
        sock.settimeout(timeout)
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify_path), **self.env}
        # stderr goes to a file: an unread pipe fills up and blocks a chatty daemon
        self.stderr_path = self.config.parent / f"daemon-{len(self.messages)}-{time.time_ns()}.err"
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "broadcaster", "--config", str(self.config), "run"],
                env=env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self._sock = sock
        return self

    def ready(self, timeout: float = 60) -> DaemonProcess:
        """Wait for READY=1 (a leader has planned; a standby serves and stands by)."""
        try:
            self.expect("READY=1", timeout)
        except (TimeoutError, OSError):
            self.kill()
            raise AssertionError(
                "daemon never sent READY=1: " + self.stderr_path.read_text(errors="replace")[-2000:]
            ) from None
        return self

    def expect(self, message: str, timeout: float) -> None:
        """Wait for an sd_notify message; give up early if the daemon exits."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        self._sock.settimeout(0.2)
        while message not in self.messages:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise TimeoutError(message)
            try:
                self.messages += self._sock.recv(4096).decode().split("\n")
            except TimeoutError:
                continue

    def terminate(self, timeout: float = 15) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._sock.close()


def broadcaster(
    config: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as another process, the way an operator does (`env` over ours)."""
    return subprocess.run(
        [sys.executable, "-m", "broadcaster", "--config", str(config), *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def now() -> datetime:
    return datetime.now(UTC)


def config_factory(tmp_path: Path, db_url: str) -> Callable[..., Path]:
    """A config on the test database whose schedules folder the test fills."""

    def make(schedules: dict[str, str], planner: str = "") -> Path:
        config = write_config(tmp_path, db_url)
        folder = tmp_path / "schedules"
        folder.mkdir(exist_ok=True)
        for name, text in schedules.items():
            (folder / name).write_text(text, encoding="utf-8")
        with config.open("a", encoding="utf-8") as out:
            out.write(f'\n[planner]\nschedules = "schedules"\n{planner}\n')
        return config

    return make


def daemon_factory() -> Iterator[Callable[[Path], DaemonProcess]]:
    started: list[DaemonProcess] = []

    def make(config: Path) -> DaemonProcess:
        daemon = DaemonProcess(config, Path(f"/tmp/bcast-notify-{os.getpid()}-{len(started)}"))
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        daemon.kill()
