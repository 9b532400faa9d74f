"""structlog setup: JSON lines in a file for `broadcaster logs`, readable lines on a terminal,
and journald's own convention under systemd.

The file format is what `broadcaster logs` parses: one JSON object a line with
`time` (ISO 8601 with the configured zone's offset), `severity`, `event`
(a stable dotted name), the context and, for a record logged with an
exception, `exception` (type, message and traceback as text). `severity`
rather than `level` because `level` is domain context (the alert level of a
`level.changed` event).

The file is opened on the first record, not before, so reading commands that
log nothing leave no file behind, and it is reopened when its path stops
naming the open file, so `logrotate` may move it away (no `copytruncate`).
Under systemd (`JOURNAL_STREAM` names our stderr) stderr *is* the journal:
records go there once, without colours or our timestamp, each line opening
with its syslog priority (`<3>` error … `<7>` debug, sd-daemon(3)).
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

SECRET_KEYS = re.compile(r"pass(word)?|token|secret|authorization|api_key", re.IGNORECASE)
SECRET_IN_TEXT = re.compile(r"((?:token|password|passwd|secret)=)[^&\s\"']+", re.IGNORECASE)
_HANDLER_MARK = "_broadcaster_handler"
QUIET_LIBRARIES = ("apscheduler", "alembic")
SYSLOG_PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Mask secrets by key and inside URLs, so no token or password reaches a log."""
    for key, value in list(event_dict.items()):
        if SECRET_KEYS.search(key):
            event_dict[key] = "***"
        elif isinstance(value, str) and "=" in value:
            event_dict[key] = SECRET_IN_TEXT.sub(r"\1***", value)
    return event_dict


SEVERITY_OF_METHOD = {"warn": "warning", "exception": "error", "fatal": "critical"}


def add_severity(_logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("severity", SEVERITY_OF_METHOD.get(method, method))
    return event_dict


def timestamper(tz: ZoneInfo) -> Processor:
    """Stamp events in the operator's zone, with its offset, so logs read locally."""

    def stamp(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        event_dict["time"] = datetime.now(tz).isoformat(timespec="milliseconds")
        return event_dict

    return stamp


class ReopeningFileHandler(logging.handlers.WatchedFileHandler):
    """Append to a file that logrotate may rename: reopen when the path names another
    file (or none), and create the file and its folder only when a record arrives."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8", delay=True)

    def _open(self) -> io.TextIOWrapper:
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def journal_stream(environ: Mapping[str, str], stream: IO[Any]) -> bool:
    """Tell whether `stream` is systemd's journal: JOURNAL_STREAM is its `dev:inode`
    (a child whose stderr was redirected inherits the variable but not the stream)."""
    dev, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    if not (dev.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(dev), int(inode))


def journal_renderer() -> Processor:
    """Render a record for journald: no colours, no time (journald stamps it), and
    every line prefixed with the record's syslog priority."""
    console = structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)

    def render(logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        priority = SYSLOG_PRIORITY.get(str(event_dict.pop("severity", method)), 6)
        event_dict.pop("time", None)
        text = str(console(logger, method, event_dict))
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines() or [""])

    return render


def configure_logging(
    log_file: Path | None,
    tz: ZoneInfo,
    level: str = "info",
    console: bool = True,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Send structlog and stdlib records to the JSON file and to stderr: always under
    journald (it is the service's log), else when `console` asks for it."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_severity,
        timestamper(tz),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level.upper())
    for noisy in QUIET_LIBRARIES:  # job bookkeeping and migration chatter, not operator events
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    if log_file is not None:
        _add_handler(
            root,
            ReopeningFileHandler(log_file),
            shared,
            structlog.processors.JSONRenderer(ensure_ascii=False, default=str),
        )
    journal = journal_stream(os.environ if environ is None else environ, sys.stderr)
    if journal or console:
        renderer = (
            journal_renderer()
            if journal
            else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(), timestamp_key="time")
        )
        _add_handler(root, logging.StreamHandler(sys.stderr), shared, renderer)


def _add_handler(
    root: logging.Logger,
    handler: logging.Handler,
    shared: list[Processor],
    renderer: Processor,
) -> None:
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,  # the traceback as text, then masked
                redact,
                renderer,
            ],
        )
    )
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
