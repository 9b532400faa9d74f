"""structlog setup: JSON lines in a file for `broadcaster logs`, readable lines on a terminal.

The file format is what `broadcaster logs` parses: one JSON object a line with
`time` (ISO 8601 with the configured zone's offset), `severity`, `event`
(a stable dotted name) and the context. `severity` rather than `level` because
`level` is domain context (the alert level of a `level.changed` event).
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog
from structlog.typing import EventDict, WrappedLogger

SECRET_KEYS = re.compile(r"pass(word)?|token|secret|authorization|api_key", re.IGNORECASE)
SECRET_IN_TEXT = re.compile(r"((?:token|password|passwd|secret)=)[^&\s\"']+", re.IGNORECASE)
_HANDLER_MARK = "_broadcaster_handler"


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Mask secrets by key and inside URLs, so no token or password reaches a log."""
    for key, value in list(event_dict.items()):
        if SECRET_KEYS.search(key):
            event_dict[key] = "***"
        elif isinstance(value, str) and "=" in value:
            event_dict[key] = SECRET_IN_TEXT.sub(r"\1***", value)
    return event_dict


def add_severity(_logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("severity", "warning" if method == "warn" else method)
    return event_dict


def timestamper(tz: ZoneInfo) -> structlog.typing.Processor:
    """Stamp events in the operator's zone, with its offset, so logs read locally."""

    def stamp(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        event_dict["time"] = datetime.now(tz).isoformat(timespec="milliseconds")
        return event_dict

    return stamp


def configure_logging(
    log_file: Path | None, tz: ZoneInfo, level: str = "info", console: bool = True
) -> None:
    """Send structlog and stdlib records to the JSON file and, optionally, stderr."""
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_severity,
        timestamper(tz),
        redact,
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
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        _add_handler(
            root,
            logging.FileHandler(log_file, encoding="utf-8"),
            shared,
            structlog.processors.JSONRenderer(ensure_ascii=False, default=str),
        )
    if console:
        _add_handler(
            root,
            logging.StreamHandler(sys.stderr),
            shared,
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(), timestamp_key="time"),
        )


def _add_handler(
    root: logging.Logger,
    handler: logging.Handler,
    shared: list[structlog.typing.Processor],
    renderer: structlog.typing.Processor,
) -> None:
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
