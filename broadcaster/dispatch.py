"""What happens when an occurrence is due: the handler interface and the task handler.

A handler takes the occurrences of one channel due at one instant (already
claimed in the dispatch table) and returns the keys that failed, with why.
Handlers must hand work over quickly (create a blast, publish a playlist):
the SMPP senders and the playlist publisher do the slow part. The daemon maps
channels to handlers; a channel without one is recorded `unhandled`.

Plugging in another channel (when merging):
    handlers = default_handlers(settings)
    handlers[Channel.SMS] = my_sms_handler        # Callable[[Sequence[Occurrence]], Failures]
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from datetime import datetime, timedelta

from broadcaster.cadence import parse_duration
from broadcaster.config import Settings
from broadcaster.occurrence import Channel, Occurrence, Task

Key = tuple[str, str, datetime]
Failures = Mapping[Key, str] | None
Handler = Callable[[Sequence[Occurrence]], Failures]


def is_missed(occurrence: Occurrence, now: datetime, grace: Mapping[Channel, timedelta]) -> bool:
    """Say whether an occurrence is too late to act on, by its channel's grace period."""
    return too_late(occurrence.channel, occurrence.at, now, grace)


def too_late(
    channel: Channel, at: datetime, now: datetime, grace: Mapping[Channel, timedelta]
) -> bool:
    """Say whether what a channel was due to do at `at` is past the channel's grace."""
    return now - at > grace.get(channel, timedelta(0))


def occurrence_key(occurrence: Occurrence) -> str:
    """Return the occurrence as one string a task can deduplicate by (programme/area/at)."""
    return f"{occurrence.programme}/{occurrence.area}/{occurrence.at.isoformat()}"


def grace_periods(settings: Settings) -> dict[Channel, timedelta]:
    return {Channel(name): parse_duration(text) for name, text in settings.planner.grace.items()}


OCCURRENCE_HEADER = "Broadcaster-Occurrence"  # a URL task's deduplication key
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")  # copied when the daemon has them
DEFAULT_ENV = {"PATH": os.defpath, "LANG": "C.UTF-8"}


def task_environment(
    occurrence: Occurrence, task: Task, data_dir: str, daemon_env: Mapping[str, str]
) -> dict[str, str]:
    """Build a task command's whole environment from what its programme names.

    A task never inherits the daemon's environment: that holds carrier
    passwords and the station token secret. It gets PATH, HOME, LANG, LC_ALL
    and TZ (PATH and LANG defaulted when the daemon has none), the variables
    its `pass_env` names copied from the daemon's, its own `env`, and the
    occurrence in BROADCASTER_PROGRAMME, _AREA, _AT, _OCCURRENCE and _DATA_DIR.
    A leader killed mid-task makes the next leader run it again:
    BROADCASTER_OCCURRENCE is the key a task deduplicates by.
    """
    copied = (*BASE_ENV, *task.pass_env)
    return {
        **DEFAULT_ENV,
        **{name: daemon_env[name] for name in copied if name in daemon_env},
        **dict(task.env),
        "BROADCASTER_PROGRAMME": occurrence.programme,
        "BROADCASTER_AREA": occurrence.area,
        "BROADCASTER_AT": occurrence.at.isoformat(),
        "BROADCASTER_OCCURRENCE": occurrence_key(occurrence),
        "BROADCASTER_DATA_DIR": data_dir,
    }


class TaskHandler:
    """Run a task's command (or call its URL), one occurrence after another.

    The command runs in the data directory with the environment
    `task_environment` builds. `stop()` terminates running commands so a
    shutting-down daemon returns in time.
    """

    def __init__(self, data_dir: os.PathLike[str] | str, timeout: timedelta) -> None:
        self._data_dir = str(data_dir)
        self._timeout = timeout.total_seconds()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def __call__(self, occurrences: Sequence[Occurrence]) -> Failures:
        failures: dict[Key, str] = {}
        for occurrence in occurrences:
            if self._stopping.is_set():
                failures[occurrence.key] = "not run: the daemon is stopping"
                continue
            try:
                self._run_one(occurrence)
            except Exception as exc:  # noqa: BLE001 - any failure is recorded on the row
                failures[occurrence.key] = str(exc) or type(exc).__name__
        return failures

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for process in self._running:
                _kill_group(process, signal.SIGTERM)

    def _run_one(self, occurrence: Occurrence) -> None:
        content = occurrence.content
        if not isinstance(content, Task):
            raise TypeError(f"a task handler got {content.kind!r} content, not a task")
        if content.url:
            request = urllib.request.Request(
                content.url, headers={OCCURRENCE_HEADER: occurrence_key(occurrence)}
            )
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                if not 200 <= response.status < 300:
                    raise RuntimeError(f"{content.url} answered HTTP {response.status}")
            return
        env = task_environment(occurrence, content, self._data_dir, os.environ)
        os.makedirs(self._data_dir, exist_ok=True)
        process = subprocess.Popen(
            list(content.command),
            env=env,
            cwd=self._data_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        with self._lock:
            self._running.add(process)
        try:
            _, err = process.communicate(timeout=self._timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process, signal.SIGKILL)
            process.communicate()
            raise RuntimeError(f"timed out after {self._timeout:.0f} s") from None
        finally:
            with self._lock:
                self._running.discard(process)
        if process.returncode != 0:
            tail = err.decode(errors="replace").strip()[-300:]
            raise RuntimeError(f"exit status {process.returncode}: {tail}")


def _kill_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the command and its children: a shell's child would keep the pipes open."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def default_handlers(settings: Settings) -> MutableMapping[Channel, Handler]:
    """The handlers this package provides itself; others are added when merging."""
    timeout = parse_duration(settings.planner.task_timeout)
    return {Channel.TASK: TaskHandler(settings.data_dir, timeout)}
