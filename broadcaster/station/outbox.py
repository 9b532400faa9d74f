"""Playback reports waiting on disk until the centre takes them.

A report is a small JSON file named by the time it was made and its id, so
the folder lists in the order things happened. It is deleted only after the
centre answered 202 for the batch holding it; when that answer is lost, the
batch is sent again and the centre, which keys reports by id, stores each
once. None lost, none twice.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import structlog

from broadcaster.station.cache import write_atomic

log = structlog.get_logger(__name__)

BATCH = 200


class Outbox:
    """The report queue of one agent."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def put(self, event: str, *, at: datetime, **fields: Any) -> str:
        """Queue one report; return its id."""
        report_id = uuid.uuid4().hex
        body = {"id": report_id, "event": event, **fields}
        body.setdefault("started", at.isoformat())
        name = f"{time.time_ns():020d}-{report_id}.json"
        write_atomic(self.root / name, json.dumps(body, ensure_ascii=False).encode("utf-8"))
        return report_id

    def pending(self) -> int:
        return sum(1 for _ in self.root.glob("*.json"))

    def send(self, client: httpx.Client, url: str) -> int:
        """Send queued reports in batches until none is left; return how many left the box."""
        sent = 0
        while files := sorted(self.root.glob("*.json"))[:BATCH]:
            batch = []
            for path in files:
                try:
                    batch.append(json.loads(path.read_bytes()))
                except ValueError as exc:  # a damaged file cannot be sent; keep it aside
                    log.error("station.report_unreadable", file=path.name, detail=str(exc))
                    path.rename(path.with_suffix(".bad"))
                    files.remove(path)
            try:
                response = client.post(url, json=batch, timeout=15)
            except httpx.HTTPError as exc:
                log.info("station.reports_held", pending=len(files), detail=str(exc))
                return sent
            if response.status_code != 202:
                log.warning(
                    "station.reports_refused",
                    status=response.status_code,
                    detail=response.text[:300],
                )
                return sent
            for path in files:
                path.unlink(missing_ok=True)
            sent += len(files)
        return sent
