"""Keep every station's published day in step with the daemon's plan and the notices.

The daemon tells the service when its plan changes; a thread of the service
plans today and tomorrow in the operator's zone (stations must hold the whole
day, not just the daemon's horizon) and republishes. It also polls the
notices and the shared clip library, so a notice drafted or approved in another
process, one a concurrent publication overwrote, or a clip imported on another
node is on air within one poll; on PostgreSQL a notification (`wake`, from
`store.changes`) makes that poll happen at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta

import structlog
from sqlalchemy import Engine

from broadcaster.audio.notice import republish
from broadcaster.audio.publish import publisher
from broadcaster.audio.sharing import node_library
from broadcaster.config import Settings
from broadcaster.dispatch import Failures, Key
from broadcaster.levels import LevelChange
from broadcaster.occurrence import Channel, Occurrence
from broadcaster.planner import plan
from broadcaster.programmes import Programme
from broadcaster.store.audio import notices_marker
from broadcaster.store.library import library_marker
from broadcaster.store.published import stations_published

log = structlog.get_logger(__name__)

AIRED_CHANNELS = frozenset({Channel.LOUDSPEAKER, Channel.VAN, Channel.RELAY})


class PlaylistService:
    """Publish in a thread of its own, one publication at a time, latest plan wins."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_seconds: float = 1.0,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._clock = clock
        self._poll = poll_seconds
        self._registry = settings.registry()
        self._pub = publisher(settings, engine)
        self._pending: tuple[list[Programme], list[LevelChange]] | None = None
        self._current: tuple[list[Programme], list[LevelChange]] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._marker: tuple[tuple[int, int, int], tuple[int, int]] | None = None
        self._thread = threading.Thread(target=self._run, name="playlists", daemon=True)

    def plan_changed(self, programmes: Sequence[Programme], changes: Sequence[LevelChange]) -> None:
        """Observer the daemon calls after every replan; returns at once."""
        with self._lock:
            self._pending = (list(programmes), list(changes))
        self._wake.set()

    def wake(self) -> None:
        """Look at the notices now rather than at the next poll (a notification came)."""
        self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._poll)
            self._wake.clear()
            with self._lock:
                pending, self._pending = self._pending, None
            try:
                marker = (notices_marker(self._engine), library_marker(self._engine))
                if pending is not None:
                    self._current = pending
                elif marker == self._marker or self._current is None:
                    continue
                self._marker = marker
                self._publish(*self._current)
            except Exception as exc:  # noqa: BLE001 - stations keep the last good publication
                log.error("audio.publish_failed", detail=str(exc))

    def _publish(self, programmes: list[Programme], changes: list[LevelChange]) -> None:
        now = self._clock()
        tz = self._settings.tz
        start = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
        end = start + timedelta(days=self._settings.audio.days_ahead)
        occurrences = [
            o
            for o in plan(
                programmes, changes, self._registry, start.astimezone(UTC), end.astimezone(UTC), tz
            )
            if o.channel in AIRED_CHANNELS
        ]
        library = node_library(self._settings, self._engine)
        report = republish(
            self._engine, self._registry, self._pub, library, now=now, occurrences=occurrences
        )
        log.info(
            "audio.plan_published",
            occurrences=len(occurrences),
            stations=report.stations,
            slots=report.slots,
            written=report.written,
            unchanged=report.unchanged,
        )


def published_ahead_handler(
    settings: Settings, engine: Engine
) -> Callable[[Sequence[Occurrence]], Failures]:
    """Handler for aired channels: the playlist went out ahead, so a due occurrence only
    checks that its station holds a published day, and fails when it does not."""
    registry = settings.registry()
    tz = settings.tz

    def handle(occurrences: Sequence[Occurrence]) -> Failures:
        failures: dict[Key, str] = {}
        held: dict[date, set[str]] = {}
        for o in occurrences:
            day = o.at.astimezone(tz).date()
            if day not in held:
                held[day] = stations_published(engine, day)
            for commune in registry.communes_under(o.area):
                station = commune.station.code if commune.station else None
                if station and station not in held[day]:
                    failures[o.key] = f"no playlist published for station {station} on {day}"
        return failures

    return handle
