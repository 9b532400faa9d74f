"""The station agent's shell: fetch ahead, play on time, report, beat.

Four threads share little: the sync thread keeps the cache (a long-poll on
today's document hears of a notice within a second, a full refresh every
minute brings tomorrow and the audio), the report thread empties the
outbox, the heartbeat thread tells the centre the station lives, and the
main thread plays. The player decides with `plan.choose` on the cues of
the cached days, so it needs the centre for nothing once the day is cached.
"""

from __future__ import annotations

import json
import queue
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path

import httpx
import structlog

from broadcaster.station.cache import Cache, FetchError, write_atomic
from broadcaster.station.mpv import Event, Mpv, PlayerError
from broadcaster.station.outbox import Outbox
from broadcaster.station.plan import (
    BadDay,
    Cue,
    Source,
    carried_over,
    choose,
    cues,
    horizon,
    next_due,
    sources,
)

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
LOAD_SECONDS = 15.0  # a file that has not started this long after loadfile has failed


@dataclass(frozen=True)
class AgentConfig:
    """How an agent reaches its centre and plays; timings shortened by tests."""

    centre: str
    station: str
    token: str
    cache: Path
    mpv_options: tuple[str, ...] = ()
    heartbeat: float = 30.0
    refresh: float = 60.0
    wait: float = 25.0  # long-poll length; the centre holds the request this long at most
    retry: float = 5.0  # between attempts when the centre is unreachable, and fallback polling
    version: str = "unknown"


@dataclass
class Playing:
    """What mpv is airing for the agent now."""

    cue: Cue
    source: Source
    fallback: bool
    offset: float
    asked: float  # monotonic time of the loadfile
    entry: int | None = None
    started: datetime | None = None
    loaded: float | None = None


@dataclass
class _State:
    cues: tuple[Cue, ...] = ()
    done: set[str] = field(default_factory=set)
    resume: dict[str, float] = field(default_factory=dict)
    last_item: str | None = None
    last_aired: datetime | None = None
    player: str = "idle"


class Agent:
    """One station's agent."""

    def __init__(self, config: AgentConfig, clock: Clock = lambda: datetime.now(UTC)) -> None:
        self.config = config
        self.clock = clock
        self.cache = Cache(config.cache)
        self.outbox = Outbox(config.cache / "reports")
        self.done_file = config.cache / "done.json"
        self.base = f"{config.centre.rstrip('/')}/stations/{config.station}"
        self.stop = threading.Event()
        self._wake = threading.Event()
        self._reports_wake = threading.Event()
        self._events: queue.Queue[Event] = queue.Queue()
        self._lock = threading.Lock()
        self._state = _State(done=self._load_done())
        self._playing: Playing | None = None
        self._entry: int | None = None
        self.player = Mpv(config.mpv_options, self._on_event, config.cache)

    # --- lifecycle ---------------------------------------------------------------

    def run(self) -> None:
        """Play until `stop` is set; the other threads end with it."""
        self._load_plan()
        self.player.start()
        threads = [
            threading.Thread(target=self._sync_loop, name="sync", daemon=True),
            threading.Thread(target=self._report_loop, name="reports", daemon=True),
            threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True),
        ]
        for thread in threads:
            thread.start()
        log.info(
            "station.agent_started",
            station=self.config.station,
            centre=self.config.centre,
            cues=len(self._state.cues),
        )
        try:
            self._play_loop()
        finally:
            if self._playing is not None:
                self._interrupt("agent stopped")
            self.player.shutdown()
            self._reports_wake.set()
            for thread in threads:
                thread.join(timeout=2)
            log.info("station.agent_stopped", pending_reports=self.outbox.pending())

    def shutdown(self) -> None:
        """Ask `run` to return (from a signal handler): stop what plays, flush reports."""
        self.stop.set()
        self._wake.set()
        self._reports_wake.set()

    def _client(self) -> httpx.Client:
        return httpx.Client(headers={"Authorization": f"Bearer {self.config.token}"})

    # --- the cache ---------------------------------------------------------------

    def _sync_loop(self) -> None:
        with self._client() as client:
            next_refresh = 0.0
            while not self.stop.is_set():
                try:
                    if time.monotonic() >= next_refresh:
                        self._refresh(client)
                        next_refresh = time.monotonic() + self.config.refresh
                    self._watch_today(
                        client, min(self.config.wait, max(next_refresh - time.monotonic(), 0.0))
                    )
                except FetchError as exc:
                    log.warning("station.centre_unreachable", detail=str(exc))
                    self.stop.wait(self.config.retry)
                except Exception as exc:  # noqa: BLE001 - a full disk must not end the syncing
                    log.error("station.sync_failed", detail=f"{type(exc).__name__}: {exc}")
                    self.stop.wait(self.config.retry)

    def _refresh(self, client: httpx.Client) -> None:
        """Fetch today's and tomorrow's days and their audio; drop what is older."""
        today = self._today()
        changed = False
        # Yesterday too: a slot may air past midnight, and until the first day
        # arrives the agent knows only the machine's zone, not the centre's.
        for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
            changed |= self.cache.fetch_day(client, self._day_url(day), day)
        problems = self.cache.fetch_audio(client, sources(self._load_plan()))
        if problems:
            log.warning("station.audio_missing", count=len(problems), first=problems[0])
        self.cache.prune(today - timedelta(days=1))
        if changed:
            self._wake.set()

    def _watch_today(self, client: httpx.Client, wait: float) -> None:
        """Long-poll today's document; a change (a notice) is cached and played at once."""
        day = self._today()
        asked = time.monotonic()
        if self.cache.fetch_day(client, self._day_url(day), day, wait=wait):
            log.info("station.day_changed", day=day.isoformat())
            self.cache.fetch_audio(client, sources(self._load_plan()))
            self._wake.set()
        elif wait and time.monotonic() - asked < min(wait, 1.0):
            self.stop.wait(self.config.retry)  # the centre did not hold the poll: poll instead

    def _day_url(self, day: date) -> str:
        return f"{self.base}/{day.isoformat()}.json"

    def _today(self) -> date:
        return self.clock().astimezone(self._zone()).date()

    def _zone(self) -> tzinfo:
        """The centre's zone, as the offset its slot times carry (the Pi's own zone at first)."""
        planned = self._state.cues
        if planned and planned[0].at.tzinfo is not None:
            return planned[0].at.tzinfo
        return datetime.now().astimezone().tzinfo or UTC

    def _load_plan(self) -> tuple[Cue, ...]:
        try:
            planned = cues(self.cache.days())
        except BadDay as exc:
            log.error("station.cache_day_refused", detail=str(exc))
            return self._state.cues
        with self._lock:
            self._state.cues = planned
        return planned

    # --- reports and heartbeats --------------------------------------------------

    def _report_loop(self) -> None:
        with self._client() as client:
            while not self.stop.is_set():
                self._reports_wake.wait(self.config.retry)
                self._reports_wake.clear()
                try:
                    sent = self.outbox.send(client, f"{self.base}/reports")
                except OSError as exc:  # the outbox folder itself failed: say so, keep going
                    log.error("station.outbox_failed", detail=str(exc))
                    continue
                if sent:
                    log.info("station.reports_sent", count=sent)
            self.outbox.send(client, f"{self.base}/reports")

    def _heartbeat_loop(self) -> None:
        with self._client() as client:
            while not self.stop.is_set():
                try:
                    response = client.post(
                        f"{self.base}/heartbeat", json=self.heartbeat(), timeout=10
                    )
                    if response.status_code != 204:
                        log.warning(
                            "station.heartbeat_refused",
                            status=response.status_code,
                            detail=response.text[:200],
                        )
                except httpx.HTTPError as exc:
                    log.info("station.heartbeat_failed", detail=str(exc))
                self.stop.wait(self.config.heartbeat)

    def heartbeat(self) -> dict[str, object]:
        """What the agent says of itself: version, cache horizon, disk, player, last aired."""
        state = self._state
        return {
            "at": self.clock().isoformat(),
            "version": self.config.version,
            "cache_until": horizon(self.cache.days()),
            "disk_free": shutil.disk_usage(self.config.cache).free,
            "player": state.player,
            "last_item": state.last_item,
            "last_aired": state.last_aired.isoformat() if state.last_aired else None,
        }

    # --- playing -----------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        self._events.put(event)
        self._wake.set()

    def _play_loop(self) -> None:
        while not self.stop.is_set():
            self._drain_events()
            try:
                self._step(self.clock())
            except PlayerError as exc:  # mpv is started again on the next command
                log.error("station.player_failed", detail=str(exc))
                self._state.player = "down"
                self.stop.wait(1.0)
            self._wake.wait(self._sleep(self.clock()))
            self._wake.clear()

    def _step(self, now: datetime) -> None:
        """Make mpv air what the plan wants now."""
        playing = self._playing
        with self._lock:
            planned = self._state.cues
        busy = set(self._state.done) | ({playing.cue.key} if playing else set())
        wanted = choose(planned, now, busy)
        if playing is None:
            if wanted is not None:
                self._start(wanted, wanted.source, fallback=False)
            return
        if playing.cue.key not in {c.key for c in planned}:
            successor = carried_over(playing.cue, planned, busy, now)
            if successor is None:
                self._interrupt("withdrawn by the centre", resume=False)
                return
            # A republished day moved the item (a notice opened a slot before it): same item.
            playing.cue = successor
        if wanted is not None and wanted.emergency and not playing.cue.emergency:
            self._interrupt("emergency notice", resume=True)
            self._start(wanted, wanted.source, fallback=False)
        elif (
            playing.cue.live
            and not playing.fallback
            and playing.started
            and (now - playing.started).total_seconds() >= playing.source.duration - playing.offset
        ):
            self.player.stop()
            self._finished(now)
        elif playing.loaded is None and time.monotonic() - playing.asked > LOAD_SECONDS:
            self.player.stop()
            self._failed(f"did not start within {LOAD_SECONDS:g} s")

    def _sleep(self, now: datetime) -> float:
        """Until the next thing to do: a cue due, a relay's end, or an event (which wakes us)."""
        playing = self._playing
        if playing is not None:
            if playing.cue.live and playing.started:
                end = playing.started + timedelta(seconds=playing.source.duration)
                return max(0.05, min((end - now).total_seconds(), 5.0))
            return 5.0
        due = next_due(self._state.cues, now, self._state.done)
        return max(0.01, min((due - now).total_seconds(), 30.0)) if due else 30.0

    def _start(self, cue: Cue, source: Source | None, *, fallback: bool) -> None:
        if source is None:
            self._playing = None
            self._report(cue, "failed", reason="nothing playable: the manifest has no URL")
            return self._after_failure(cue, fallback)
        offset = 0.0 if fallback else self._state.resume.pop(cue.key, 0.0)
        local = self.cache.path(source)
        target = str(local) if local else source.url
        if local is None and source.sha256:
            log.warning("station.not_cached", item=source.name, playing_from=source.url)
        self._playing = Playing(cue, source, fallback, offset, time.monotonic())
        try:
            self.player.play(target, start=offset)
        except PlayerError as exc:
            self._failed(str(exc))
            return None
        self._state.player = "loading"
        return None

    def _drain_events(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            self._handle(event)

    def _handle(self, event: Event) -> None:
        playing = self._playing
        if event.name == "start-file":
            self._entry = event.entry
            if playing is not None and playing.entry is None:
                playing.entry = event.entry
            return
        if event.name == "player-gone":
            self._state.player = "down"
            if playing is not None:
                self._failed("the player stopped")
            return
        if playing is None or (event.entry is not None and event.entry != playing.entry):
            return  # an earlier file's end, already accounted for
        now = self.clock()
        if event.name == "file-loaded":
            playing.loaded = time.monotonic()
            playing.started = now
            self._state.player = "playing"
            self._report(playing.cue, "started", source=playing.source, started=now)
            log.info(
                "station.item_started",
                item=playing.source.name,
                slot=playing.cue.slot,
                emergency=playing.cue.emergency,
            )
        elif event.name == "end-file" and event.reason == "eof":
            if playing.cue.live and not playing.fallback:
                self._failed("the stream ended early")
            else:
                self._finished(now)
        elif event.name == "end-file" and event.reason == "error":
            self._failed(event.error or "mpv could not play it")

    def _finished(self, now: datetime) -> None:
        playing = self._playing
        assert playing is not None
        self._playing = None
        self._state.player = "idle"
        self._state.last_item = playing.source.name
        self._state.last_aired = now
        self._report(
            playing.cue,
            "finished",
            source=playing.source,
            started=playing.started or now,
            finished=now,
        )
        self._mark_done(playing.cue.key)
        log.info("station.item_finished", item=playing.source.name, slot=playing.cue.slot)

    def _failed(self, reason: str) -> None:
        playing = self._playing
        assert playing is not None
        self._playing = None
        self._state.player = "idle"
        self._report(
            playing.cue, "failed", source=playing.source, reason=reason, started=playing.started
        )
        log.warning("station.item_failed", item=playing.source.name, reason=reason)
        self._after_failure(playing.cue, playing.fallback)

    def _after_failure(self, cue: Cue, was_fallback: bool) -> None:
        """A relay that cannot air gives way to its fallback clip; anything else is skipped."""
        if cue.fallback is not None and not was_fallback:
            self._start(cue, cue.fallback, fallback=True)
        else:
            self._mark_done(cue.key)

    def _interrupt(self, reason: str, resume: bool = False) -> None:
        """Stop what plays; with `resume`, it goes on from here once the interruption ends."""
        playing = self._playing
        assert playing is not None
        position = None
        try:
            position = self.player.position()
            self.player.stop()
        except PlayerError as exc:
            log.warning("station.player_unanswering", detail=str(exc))
        self._playing = None
        self._state.player = "idle"
        now = self.clock()
        self._report(
            playing.cue,
            "interrupted",
            source=playing.source,
            reason=reason,
            started=playing.started or now,
            finished=now,
        )
        log.info(
            "station.item_interrupted", item=playing.source.name, reason=reason, position=position
        )
        if resume and not playing.fallback and not playing.cue.live:
            self._state.resume[playing.cue.key] = max(0.0, (position or 0.0) - 1.0)
        else:
            self._mark_done(playing.cue.key)

    def _report(
        self,
        cue: Cue,
        event: str,
        *,
        source: Source | None = None,
        started: datetime | None = None,
        finished: datetime | None = None,
        reason: str | None = None,
    ) -> None:
        now = self.clock()
        body: dict[str, object] = {
            "item": (source.name if source else cue.item)[:256],
            "slot": cue.slot,
            "day": cue.day,
            "programme": cue.programme,
            "started": (started or now).isoformat(),
        }
        if finished is not None:
            body["finished"] = finished.isoformat()
        if reason is not None:
            body["reason"] = reason[:500]
        self.outbox.put(event, at=now, **body)
        self._reports_wake.set()

    def _mark_done(self, key: str) -> None:
        self._state.done.add(key)
        days = {c.day for c in self._state.cues}
        kept = sorted(k for k in self._state.done if k[:10] in days or not days)
        write_atomic(self.done_file, json.dumps(kept).encode())

    def _load_done(self) -> set[str]:
        try:
            return set(json.loads(self.done_file.read_bytes()))
        except (FileNotFoundError, ValueError):
            return set()


def parse_mpv_options(values: Sequence[str]) -> tuple[str, ...]:
    """Check `KEY=VALUE` pairs for mpv; a bad one is a clear error, not a silent mpv failure."""
    options = []
    for value in values:
        key, sep, _ = value.partition("=")
        key = key.removeprefix("--")
        if not key or not all(c.isalnum() or c in "-_" for c in key):
            raise ValueError(f"--mpv-option {value!r}: expected KEY=VALUE, e.g. ao=pcm")
        options.append(value.removeprefix("--") if sep else key)
    return tuple(options)
