"""mpv as the agent's player, driven over its JSON IPC socket.

One mpv runs for the agent's life (`--idle`), so starting an item costs a
`loadfile`, not a process. Its events (`file-loaded`, `end-file` with a
reason) arrive on a reader thread and are handed to the agent as plain
values; a dead mpv is started again on the next command.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

START_SECONDS = 10.0
MAX_LINE = 1 << 20  # an mpv event line longer than this is not mpv talking


class PlayerError(RuntimeError):
    """mpv could not be started or stopped answering."""


@dataclass(frozen=True)
class Event:
    """An mpv event the agent acts on: a file started, or ended and why."""

    name: str
    reason: str | None = None
    error: str | None = None
    entry: int | None = None


def mpv_args(socket_path: str, options: Sequence[str]) -> list[str]:
    """mpv's command line: idle, no video, no terminal, then the operator's options."""
    extra = [o if o.startswith("--") else f"--{o}" for o in options]
    return [
        shutil.which("mpv") or "mpv",
        "--idle=yes",
        "--no-config",
        "--no-video",
        "--no-terminal",
        "--gapless-audio=no",
        "--keep-open=no",
        f"--input-ipc-server={socket_path}",
        *extra,
    ]


class Mpv:
    """A running mpv and its IPC connection."""

    def __init__(
        self, options: Sequence[str], on_event: Callable[[Event], None], folder: Path
    ) -> None:
        self._options = tuple(options)
        self._on_event = on_event
        # The socket lives in the agent's own folder, so a killed agent leaves nothing
        # elsewhere; a folder too deep for a socket path (108 bytes) falls back to /tmp.
        path = folder / "mpv.sock"
        self._dir = None if len(str(path)) < 100 else tempfile.mkdtemp(prefix="broadcaster-mpv-")
        self._path = os.path.join(self._dir, "mpv.sock") if self._dir else str(path)
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._answers: dict[int, dict[str, object]] = {}
        self._answered = threading.Condition()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start mpv and connect to its socket, waiting until it listens."""
        if self._proc is not None and self._proc.poll() is None and self._sock is not None:
            return
        self.close()
        Path(self._path).unlink(missing_ok=True)  # left by a killed agent's mpv
        self._proc = subprocess.Popen(
            mpv_args(self._path, self._options),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # errors come over IPC; an unread pipe would block mpv
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(self._path)
                break
            except OSError:
                sock.close()
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise PlayerError(
                        f"mpv did not start (exit {self._proc.poll()}); check --mpv-option values"
                    ) from None
                time.sleep(0.02)
        self._sock = sock
        threading.Thread(target=self._read, args=(sock,), name="mpv-events", daemon=True).start()
        log.info("station.player_started", pid=self._proc.pid)

    def play(self, target: str, start: float = 0.0) -> None:
        """Replace whatever plays with `target` (a file or URL), from `start` seconds."""
        options = f"start={start:.3f}" if start > 0 else ""
        self.command("loadfile", target, "replace", *([options] if options else []))

    def stop(self) -> None:
        self.command("stop")

    def position(self) -> float | None:
        """Seconds into the file playing, or None when nothing plays."""
        answer = self.command("get_property", "time-pos", fail=False)
        value = answer.get("data")
        return float(value) if isinstance(value, int | float) else None

    def command(self, *args: object, fail: bool = True) -> dict[str, object]:
        """Send one IPC command and wait for its answer."""
        self.start()
        request_id = next(self._ids)
        line = json.dumps({"command": list(args), "request_id": request_id}) + "\n"
        with self._send_lock:
            try:
                assert self._sock is not None
                self._sock.sendall(line.encode())
            except OSError as exc:
                self.close()
                raise PlayerError(f"mpv IPC: {exc}") from exc
        with self._answered:
            self._answered.wait_for(lambda: request_id in self._answers, timeout=5)
            answer = self._answers.pop(request_id, {"error": "no answer from mpv"})
        if fail and answer.get("error") != "success":
            raise PlayerError(f"mpv {args[0]}: {answer.get('error')}")
        return answer

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(5)
            self._proc = None

    def shutdown(self) -> None:
        self.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        else:
            Path(self._path).unlink(missing_ok=True)

    def _read(self, sock: socket.socket) -> None:
        """Sort mpv's lines into answers (by request id) and events."""
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self._on_event(Event("player-gone"))
                return
            buffer += chunk
            if len(buffer) > MAX_LINE and b"\n" not in buffer:
                log.error("station.player_line_too_long", size=len(buffer))
                buffer = b""
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                self._dispatch(line)

    def _dispatch(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError as exc:
            log.warning("station.player_bad_line", detail=str(exc))
            return
        if not isinstance(message, dict):
            return
        if "request_id" in message and "event" not in message:
            with self._answered:
                self._answers[int(message["request_id"])] = message
                self._answered.notify_all()
        elif message.get("event") in ("start-file", "file-loaded", "end-file"):
            entry = message.get("playlist_entry_id")
            self._on_event(
                Event(
                    str(message["event"]),
                    _str(message.get("reason")),
                    _str(message.get("file_error")),
                    entry if isinstance(entry, int) else None,
                )
            )


def _die_with_parent() -> None:
    """Have the kernel stop mpv when the agent dies, even by SIGKILL (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
