"""The scheduling daemon: plan ahead into APScheduler, fire on time, replan on change.

APScheduler (3.11, in-memory job store) holds only the next `horizon` of the
plan, one job per instant: every occurrence due at 06:00 fires in one job. The
plan itself lives here and is rebuilt from the database and the schedule files
(their SMS and emergency programmes as an approver last accepted them, see
`schedule_review`) whenever a level changes (the `level_changes` max id), the schedules
are reloaded (`broadcaster reload` or SIGHUP) or the local date changes. Markers are
polled every `planner.poll_interval`; on PostgreSQL a notification (`wake`, from
`store.changes`) makes the poll happen at once. A standby keeps its own plan the same
way, without jobs, so every node shows the plan in force (`plan_view`). A job
looks up its instant in the current plan when it fires, so a replan never
needs to chase jobs already queued. Each occurrence is claimed in the
`dispatch` table before its handler runs; the claim is the only guard against
firing twice, across restarts and daemons. A daemon taking the scheduler over
adopts the claims its predecessor died holding and fires them again within
their grace: at least once, with handlers that are safe to repeat.
"""

from __future__ import annotations

import os
import signal
import threading
import time as monotonic_time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from broadcaster.areas import AreaKind
from broadcaster.cadence import parse_duration
from broadcaster.config import Settings
from broadcaster.dispatch import Handler, grace_periods, is_missed, too_late
from broadcaster.fencing import LeaderWatch
from broadcaster.levels import LevelChange, latest_changes, level_in_force
from broadcaster.occurrence import Channel, Occurrence
from broadcaster.planner import group_by_time, plan
from broadcaster.programmes import Programme
from broadcaster.schedule_approval import running
from broadcaster.schedule_files import ScheduleError
from broadcaster.sdnotify import notify, watchdog_interval
from broadcaster.store import dispatch as store
from broadcaster.store.dispatch import HEARTBEAT_SECONDS
from broadcaster.store.leader import SchedulerLock
from broadcaster.store.levels import change_marker, load_changes

log = structlog.get_logger(__name__)

STOP_SECONDS = 10.0
LOOKBACK = timedelta(minutes=5)  # keep just-past instants so a late job still finds its bucket
CATCH_UP_LIMIT = timedelta(hours=24)
STANDBY_SECONDS = 1.0  # how often a standby tries to take the scheduler over
Clock = Callable[[], datetime]
PlanObserver = Callable[[Sequence[Programme], Sequence[LevelChange]], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


def catch_up_since(
    now: datetime, last_heartbeat: datetime | None, grace: Mapping[Channel, timedelta]
) -> datetime:
    """Say from when a daemon taking the scheduler re-offers past instants.

    Every instant within the largest grace is offered again, whatever the last
    heartbeat says: the previous holder may have beaten after an instant fell
    due and died before claiming it. The dispatch claim drops those already
    done (as Procrastinate re-offers periodic ticks and lets its unique key
    refuse the repeats). After a longer outage the look-back reaches the last
    heartbeat (at most CATCH_UP_LIMIT), so what fell in the gap is recorded
    `missed` rather than forgotten.
    """
    since = now - max(grace.values(), default=timedelta(0))
    if last_heartbeat is not None:
        since = min(since, max(last_heartbeat, now - CATCH_UP_LIMIT))
    return since


class Daemon:
    """Wire the planner, the scheduler, the dispatch table and the handlers."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        handlers: Mapping[Channel, Handler],
        clock: Clock = utc_now,
        observers: Sequence[PlanObserver] = (),
        on_stop: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.settings = settings
        self.observers = tuple(observers)
        self.on_stop = tuple(on_stop)
        self.lock = SchedulerLock(engine)
        self.engine = engine
        self.handlers = dict(handlers)
        self.clock = clock
        self.registry = settings.registry()
        self.ladders = settings.ladder_objects()
        self.tz = settings.tz
        self.grace = grace_periods(settings)
        self.horizon = parse_duration(settings.planner.horizon)
        fence_after = parse_duration(settings.planner.fence_after).total_seconds()
        self._leader_watch = LeaderWatch(fence_after)
        self.node = f"{settings.node_name}:{os.getpid()}"  # this incarnation of the node
        self.programmes, self.held = running(settings, engine)
        self._buckets: dict[datetime, list[Occurrence]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._hangup = False
        self._inflight = 0
        self._idle = threading.Condition()
        self._errors: deque[dict[str, str]] = deque(maxlen=10)
        self._planned_at: datetime | None = None
        self._planned_day: date | None = None
        self._levels: dict[str, str] = {}
        self._leading = False
        self._lock_lost = False
        self._lock_unavailable = False  # said once per outage: the database refused the lock
        self._adopted: dict[tuple[str, str, datetime], int] = {}  # orphaned claims to re-fire
        self._takeover: dict[str, Any] | None = None
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    # --- lifecycle -------------------------------------------------------------

    def run(self) -> bool:
        """Run until SIGTERM/SIGINT; True when all in-flight work ended in time."""
        self._install_signals()
        if not self._lead():
            return self._stand_down()
        previous = store.read_status(self.engine)
        now = self.clock()
        since = catch_up_since(now, previous.heartbeat_at if previous else None, self.grace)
        store.write_status(self.engine, now=now, started=True, node=self.node, pid=os.getpid())
        self._adopt_orphans(now)
        self._markers = (change_marker(self.engine), store.reload_marker(self.engine))
        self._scheduler.start()
        self._replan("start", catch_up_since=since)
        self._settle_unplanned_orphans()
        notify("READY=1")
        if self.held:
            log.warning("schedule.awaiting_approval", programmes=list(self.held))
        log.info(
            "daemon.started",
            node=self.node,
            programmes=len(self.programmes),
            catch_up_since=since.isoformat(),
        )
        self._loop()
        return self._shutdown()

    def _adopt_orphans(self, now: datetime) -> None:
        """Take over the claims a dead scheduler left unfinished: within their channel's
        grace they fire again (the catch-up re-offers their instants), past it they are
        recorded missed. Its handler may have run, all or part: handlers repeat safely."""
        listed = store.orphans(self.engine, self.node)
        adopted = store.adopt(self.engine, [o.id for o in listed], node=self.node, now=now)
        orphans = [o for o in listed if o.id in adopted]  # not those finished meanwhile
        if not orphans:
            return
        late = [o for o in orphans if too_late(Channel(o.channel), o.key[2], now, self.grace)]
        if late:
            store.finish(
                self.engine,
                [o.id for o in late],
                store.DispatchState.MISSED,
                now,
                "its scheduler died before finishing it; past its grace at the takeover",
            )
        with self._lock:
            self._adopted = {o.key: o.id for o in orphans if o not in late}
        self._takeover = {
            "at": now.isoformat(),
            "from": sorted({o.node for o in orphans}),
            "refire": len(self._adopted),
            "missed": len(late),
        }
        log.warning("dispatch.takeover", **self._takeover)

    def _settle_unplanned_orphans(self) -> None:
        """Fail adopted claims the current plan no longer holds (a schedule or level
        changed meanwhile): nothing would fire them, and `claimed` would stay forever."""
        with self._lock:
            planned = {o.key for items in self._buckets.values() for o in items}
            gone = [i for k, i in self._adopted.items() if k not in planned]
            self._adopted = {k: i for k, i in self._adopted.items() if k in planned}
        if gone:
            store.finish(
                self.engine,
                gone,
                store.DispatchState.FAILED,
                self.clock(),
                "its scheduler died before finishing it; not in the plan at the takeover",
            )

    def _take_adopted(self, occurrences: Sequence[Occurrence]) -> list[store.Claimed]:
        """Return (once) the adopted claims among these occurrences."""
        with self._lock:
            taken = [(self._adopted.pop(o.key, None), o) for o in occurrences]
        return [store.Claimed(i, o) for i, o in taken if i is not None]

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Look for changes now rather than at the next poll (a notification came)."""
        self._wake.set()

    def plan_view(self) -> dict[str, Any]:
        """This node's own plan (levels, next occurrences), leader or standby."""
        return {"node": self.node, "role": "leader" if self._leading else "standby"} | (
            self._report()
        )

    def _lead(self) -> bool:
        """Hold the scheduler lock, waiting in standby while another daemon holds it;
        False when told to stop first. A standby still sends SMS and serves stations."""
        if self.lock.acquire():
            self._leading = True
            return True
        log.info("daemon.standby", node=self.node)
        self._markers = (-1, -1)  # unread: the first poll that can read them replans
        self._poll_changes()
        notify("READY=1")
        watchdog = watchdog_interval()
        poll = self.settings.planner.poll_interval
        next_poll = monotonic_time.monotonic() + poll
        while not self._stop.is_set():
            woken = self._wake.wait(min(STANDBY_SECONDS, watchdog or STANDBY_SECONDS))
            self._wake.clear()
            if self._stop.is_set():
                break
            if watchdog:
                notify("WATCHDOG=1")
            if self._try_lock():
                log.info("daemon.took_over", node=self.node)
                self._leading = True
                self._reread_schedules()
                return True
            if woken or monotonic_time.monotonic() >= next_poll:
                next_poll = monotonic_time.monotonic() + poll
                self._poll_changes()
        return False

    def _try_lock(self) -> bool:
        """Take the lock if it is free or its holder is fenced; a database that refuses
        connections (a restart, a cut) keeps this daemon standing by, not dead: it asks
        again next second and says once per outage why it cannot."""
        try:
            got = self.lock.acquire() or (self._fence_silent_leader() and self.lock.acquire())
        except Exception as exc:  # noqa: BLE001 - the standby outlives an unreachable database
            if not self._lock_unavailable:
                self._error("daemon.lock_unavailable", f"{type(exc).__name__}: {exc}")
            self._lock_unavailable = True
            return False
        if self._lock_unavailable:
            log.info("daemon.lock_available", node=self.node)
        self._lock_unavailable = False
        return got

    def _fence_silent_leader(self) -> bool:
        """End the lock session of a leader that holds the lock but no longer beats
        (frozen, or cut off from the database); True once its session was ended."""
        try:
            holder = self.lock.holder()
            row = store.read_status(self.engine)
            heartbeat = row.heartbeat_at if row else None
            if not self._leader_watch.stalled(holder, heartbeat, monotonic_time.monotonic()):
                return False
            assert holder is not None
            quiet = (self.clock() - heartbeat).total_seconds() if heartbeat else None
            log.warning(
                "daemon.fencing_leader",
                node=self.node,
                leader=row.node if row else None,
                backend=holder,
                quiet_seconds=round(quiet, 1) if quiet is not None else None,
            )
            return self.lock.fence(holder)
        except Exception as exc:  # noqa: BLE001 - the standby outlives a failed look
            self._error("daemon.fence_failed", f"{type(exc).__name__}: {exc}")
            return False

    def _reread_schedules(self) -> None:
        """Take over with the schedules as they are now, not as they were at our start
        (an edit the leader reloaded may be days newer); a broken edit keeps ours."""
        try:
            self.programmes, self.held = running(self.settings, self.engine)
        except ScheduleError as exc:
            self._error("planner.reload_rejected", "; ".join(exc.problems))

    def _stand_down(self) -> bool:
        log.info("daemon.stopping", inflight=0, role="standby")
        notify("STOPPING=1")
        for callback in self.on_stop:
            callback()
        return True

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGHUP, self._on_hangup)

    def _on_hangup(self, *_: Any) -> None:
        self._hangup = True
        self._wake.set()

    def _loop(self) -> None:
        poll = self.settings.planner.poll_interval
        watchdog = watchdog_interval()
        last_beat = last_dog = monotonic_time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(poll)
            self._wake.clear()
            if self._stop.is_set():
                break
            self._poll_changes()
            tick = monotonic_time.monotonic()
            if watchdog and tick - last_dog >= watchdog:
                notify("WATCHDOG=1")
                last_dog = tick
            if tick - last_beat >= HEARTBEAT_SECONDS:
                if not self.lock.still_held():
                    self._lose_lock()
                    break
                self._beat()
                last_beat = tick

    def _lose_lock(self) -> None:
        """Stop firing at once when the scheduler lock's session is gone: a standby may
        already lead, and two schedulers would fire twice. The process then ends unclean
        (exit 1), so systemd restarts it as a standby rather than it leading on its word."""
        self._scheduler.pause()
        self._leading = False
        self._lock_lost = True
        self._error("daemon.lock_lost", "the scheduler lock's database session ended")

    def _poll_changes(self) -> None:
        try:
            self._check_for_changes()
        except Exception as exc:  # noqa: BLE001 - the daemon outlives a bad poll
            self._error("daemon.poll_failed", str(exc))

    def _check_for_changes(self) -> None:
        markers = (change_marker(self.engine), store.reload_marker(self.engine))
        reload = self._hangup or markers[1] != self._markers[1]
        level_changed = markers[0] != self._markers[0]
        self._hangup = False
        self._markers = markers
        if reload:
            self._reload()
        elif level_changed:
            self._replan("level-change")
        elif self.clock().astimezone(self.tz).date() != self._planned_day:
            self._replan("midnight")

    def _shutdown(self) -> bool:
        """Stop taking jobs, let in-flight work finish or stop it, within STOP_SECONDS."""
        # The clock starts now: the callbacks' own waits (the web server's) count against it,
        # and the interpreter's exit after a stop took up to 2.4 s on a loaded machine.
        deadline = monotonic_time.monotonic() + STOP_SECONDS - 3
        log.info("daemon.stopping", inflight=self._inflight)
        notify("STOPPING=1")
        self._scheduler.shutdown(wait=False)
        for callback in self.on_stop:  # senders and publishers wind down alongside
            callback()
        finished = self._wait_idle(deadline)
        if not finished:
            for handler in self.handlers.values():
                stop = getattr(handler, "stop", None)
                if callable(stop):
                    stop()
            finished = self._wait_idle(deadline + 1.5)
        if not self._lock_lost:  # else the status row is the new leader's
            store.write_status(self.engine, now=self.clock(), stopped=True, report=self._report())
        self.lock.release()
        log.info("daemon.stopped", clean=finished and not self._lock_lost)
        return finished and not self._lock_lost

    def _wait_idle(self, deadline: float) -> bool:
        with self._idle:
            while self._inflight:
                left = deadline - monotonic_time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    # --- planning ----------------------------------------------------------------

    def _reload(self) -> None:
        """Re-read the schedules; an invalid edit keeps the running schedule."""
        try:
            programmes, held = running(self.settings, self.engine)
        except ScheduleError as exc:
            self._error("planner.reload_rejected", "; ".join(exc.problems))
            self._beat()
            return
        self.programmes, self.held = programmes, held
        log.info("planner.reloaded", programmes=len(programmes), held=list(held))
        self._replan("reload")

    def _replan(self, reason: str, catch_up_since: datetime | None = None) -> None:
        began = monotonic_time.monotonic()
        now = self.clock()
        # keep every instant a job still waits to fire, however late it runs
        start = min(catch_up_since or now, now - LOOKBACK, self._oldest_waiting(now))
        changes = load_changes(self.engine)
        occurrences = plan(
            self.programmes, changes, self.registry, start, now + self.horizon, self.tz
        )
        buckets = dict(group_by_time(occurrences))
        with self._lock:
            self._buckets = buckets
        self._planned_at = now
        self._planned_day = now.astimezone(self.tz).date()
        self._levels = self._levels_in_force(changes)
        if self._leading:  # a standby's plan is only shown; the leader's fires
            self._sync_jobs(now, catch_up_since)
            for observer in self.observers:
                observer(self.programmes, changes)
            self._beat()
        log.info(
            "planner.replanned",
            reason=reason,
            occurrences=len(occurrences),
            instants=len(buckets),
            seconds=round(monotonic_time.monotonic() - began, 3),
        )

    def _levels_in_force(self, changes: list[LevelChange]) -> dict[str, str]:
        """Levels of provinces and districts, and of communes that have their own."""
        latest = latest_changes(changes)
        return {
            area.code: level_in_force(area.code, self.registry, self.ladders, latest).level
            for area in self.registry.all()
            if area.kind is not AreaKind.COMMUNE or area.code in latest or area.level is not None
        }

    def _sync_jobs(self, now: datetime, catch_up_since: datetime | None) -> None:
        """Make the scheduler hold one job per future instant of the current plan."""
        wanted = {at for at in self._buckets if at >= now}
        for job in self._scheduler.get_jobs():
            at = datetime.fromisoformat(job.id)
            if at >= now and at not in wanted:
                job.remove()
        existing = {job.id for job in self._scheduler.get_jobs()}
        for at in sorted(wanted):
            if at.isoformat() not in existing:
                self._add_job(at, at)
        if catch_up_since is not None:
            for at in sorted(a for a in self._buckets if catch_up_since <= a < now):
                self._add_job(at, now)

    def _oldest_waiting(self, now: datetime) -> datetime:
        return min(
            (datetime.fromisoformat(job.id) for job in self._scheduler.get_jobs()), default=now
        )

    def _add_job(self, at: datetime, run_at: datetime) -> None:
        # No misfire limit: APScheduler would drop a late job without a trace; the job
        # itself records what is past its channel's grace as `missed` (`_dispatch`).
        self._scheduler.add_job(
            self._fire,
            "date",
            run_date=run_at,
            args=[at],
            id=at.isoformat(),
            misfire_grace_time=None,
            replace_existing=True,
        )

    # --- firing ----------------------------------------------------------------

    def _fire(self, at: datetime) -> None:
        with self._lock:
            due = list(self._buckets.get(at, ()))
        if not due or self._stop.is_set():
            return
        with self._idle:
            self._inflight += 1
        try:
            self._dispatch(due)
        except Exception as exc:  # noqa: BLE001 - a failed bucket must not kill the scheduler
            self._error("dispatch.bucket_failed", f"{at.isoformat()}: {exc}")
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _dispatch(self, due: list[Occurrence]) -> None:
        now = self.clock()
        missed = [o for o in due if is_missed(o, now, self.grace)]
        if missed:
            recorded = store.claim(
                self.engine, missed, now=now, node=self.node, state=store.DispatchState.MISSED
            )
            late = self._take_adopted(missed)
            if late:
                store.finish(self.engine, [c.id for c in late], store.DispatchState.MISSED, now)
            if recorded:
                log.warning(
                    "dispatch.missed",
                    count=len(recorded),
                    at=missed[0].at.isoformat(),
                    programmes=sorted({c.occurrence.programme for c in recorded}),
                )
        by_channel: dict[Channel, list[Occurrence]] = defaultdict(list)
        for occurrence in due:
            if not is_missed(occurrence, now, self.grace):
                by_channel[occurrence.channel].append(occurrence)
        for channel, occurrences in by_channel.items():
            if self._stop.is_set():
                return  # not claimed: a restart within the grace period still fires them
            self._run_handler(channel, occurrences)

    def _run_handler(self, channel: Channel, occurrences: list[Occurrence]) -> None:
        refired = self._take_adopted(occurrences)
        claimed = store.claim(self.engine, occurrences, now=self.clock(), node=self.node)
        claimed += refired
        if not claimed:
            return
        handler = self.handlers.get(channel)
        if handler is None:
            store.finish(
                self.engine,
                [c.id for c in claimed],
                store.DispatchState.UNHANDLED,
                self.clock(),
                f"no handler for channel {channel.value!r}",
            )
            log.info("dispatch.unhandled", channel=channel.value, count=len(claimed))
            return
        try:
            failures = dict(handler([c.occurrence for c in claimed]) or {})
        except Exception as exc:  # noqa: BLE001 - recorded on every claimed row
            failures = {c.occurrence.key: str(exc) or type(exc).__name__ for c in claimed}
        done = [c.id for c in claimed if c.occurrence.key not in failures]
        store.finish(self.engine, done, store.DispatchState.DONE, self.clock())
        for c in claimed:
            if c.occurrence.key in failures:
                store.finish(
                    self.engine,
                    [c.id],
                    store.DispatchState.FAILED,
                    self.clock(),
                    failures[c.occurrence.key],
                )
                self._error(
                    "dispatch.failed",
                    f"{c.occurrence.programme} {c.occurrence.area} "
                    f"{c.occurrence.at.isoformat()}: "
                    f"{failures[c.occurrence.key]}",
                )
        log.info(
            "dispatch.fired",
            channel=channel.value,
            at=occurrences[0].at.isoformat(),
            done=len(done),
            failed=len(claimed) - len(done),
            refired=len(refired),
        )

    # --- status ------------------------------------------------------------------

    def _error(self, event: str, detail: str) -> None:
        log.error(event, detail=detail)
        self._errors.append({"at": self.clock().isoformat(), "event": event, "detail": detail})

    def _beat(self) -> None:
        if not self._leading:  # the status row is the scheduler's
            return
        try:
            store.write_status(self.engine, now=self.clock(), report=self._report())
        except Exception as exc:  # noqa: BLE001 - a busy database must not stop the daemon
            log.error("daemon.heartbeat_failed", detail=str(exc))

    def _report(self) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            buckets = self._buckets
        upcoming: list[Occurrence] = []
        for at in sorted(a for a in buckets if a >= now):
            upcoming += buckets[at][: 10 - len(upcoming)]
            if len(upcoming) >= 10:
                break
        planned = Counter(o.programme for at, items in buckets.items() if at >= now for o in items)
        return {
            "levels": self._levels,
            "planned_at": self._planned_at.isoformat() if self._planned_at else None,
            "planned": dict(planned),
            "programmes": [p.id for p in self.programmes],
            "awaiting_approval": list(self.held),
            "next": [
                {
                    "programme": o.programme,
                    "channel": o.channel.value,
                    "area": o.area,
                    "at": o.at.isoformat(),
                    "priority": o.priority.value,
                    "level": o.level,
                }
                for o in upcoming
            ],
            "errors": list(self._errors),
            "takeover": self._takeover,
        }
