"""Filter the JSON log file for admins: by time, severity, event pattern and area."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from fnmatch import fnmatchcase
from pathlib import Path
from typing import IO, Any

SEVERITIES = ("debug", "info", "warning", "error", "critical")
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime, tz: tzinfo) -> datetime:
    """Accept `2h`, `30m`, `1d` back from `now`, or a date / datetime (local if no offset)."""
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: use a duration such as 2h, 30m, 1d, or a date "
            "such as 2026-11-22 or 2026-11-22T08:30"
        ) from None
    if isinstance(parsed, date) and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed


@dataclass(frozen=True)
class LogFilter:
    since: datetime | None = None
    severity: str | None = None
    event: str | None = None
    area: str | None = None

    def __post_init__(self) -> None:
        if self.severity is not None and self.severity not in SEVERITIES:
            raise ValueError(f"--level {self.severity!r}: one of {', '.join(SEVERITIES)}")

    def matches(self, record: dict[str, Any]) -> bool:
        if self.severity is not None:
            found = record.get("severity", "info")
            rank = SEVERITIES.index(found) if found in SEVERITIES else 1
            if rank < SEVERITIES.index(self.severity):
                return False
        if self.event is not None and not fnmatchcase(str(record.get("event", "")), self.event):
            return False
        if self.area is not None and not _mentions_area(record, self.area):
            return False
        if self.since is not None:
            stamp = _stamp(record)
            if stamp is None or stamp < self.since:
                return False
        return True


def _mentions_area(record: dict[str, Any], area: str) -> bool:
    value = record.get("area", record.get("areas"))
    if isinstance(value, list):
        return area in value
    return value == area


def _stamp(record: dict[str, Any]) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(str(record["time"]))
    except (KeyError, ValueError):
        return None
    return stamp if stamp.tzinfo else None


def parse_lines(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """JSON records from log lines; a torn or foreign line is passed over."""
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def read(path: Path, log_filter: LogFilter) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        yield from (r for r in parse_lines(handle) if log_filter.matches(r))


def follow(
    path: Path, log_filter: LogFilter, stop: Callable[[], bool], poll: float = 0.25
) -> Iterator[dict[str, Any]]:
    """Yield matching records as they are appended, like `tail -F`, until `stop()`:
    when logrotate moves the file away, go on from the start of the new one."""
    handle: IO[str] | None = None
    at_end = True  # the first file is followed from its end, a rotated-in one from its start
    pending = ""
    try:
        while not stop():
            if handle is None:
                try:
                    handle = path.open(encoding="utf-8", errors="replace")
                except FileNotFoundError:
                    at_end = False
                    time.sleep(poll)
                    continue
                if at_end:
                    handle.seek(0, 2)
            chunk = handle.readline()
            if not chunk:
                if _replaced(path, handle):
                    handle.close()
                    handle, at_end = None, False
                else:
                    time.sleep(poll)
                continue
            pending += chunk
            if pending.endswith("\n"):
                yield from (r for r in parse_lines([pending]) if log_filter.matches(r))
                pending = ""
    finally:
        if handle is not None:
            handle.close()


def _replaced(path: Path, handle: IO[str]) -> bool:
    """Whether `path` now names another file than the open `handle` (rotated)."""
    try:
        current = path.stat()
    except FileNotFoundError:
        return False  # moved away, the new one not created yet: keep the old open
    opened = os.fstat(handle.fileno())
    return (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino)


def render(record: dict[str, Any], tz: tzinfo) -> str:
    """One readable line: local time, severity, event, then the context as key=value."""
    stamp = _stamp(record)
    shown = stamp.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S%z") if stamp else "?"
    skip = {"time", "severity", "event", "logger"}
    context = " ".join(f"{k}={_short(v)}" for k, v in record.items() if k not in skip)
    return (
        f"{shown} {record.get('severity', 'info'):<8} {record.get('event', '')}  {context}".rstrip()
    )


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return json.dumps(text, ensure_ascii=False) if " " in text else text
