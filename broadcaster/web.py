"""The station API: playlists, manifests, audio, playback reports, health, metrics.

Stations pull. Each has a token (query `?token=` because VLC and Liquidsoap
cannot send headers; mpv may use `Authorization: Bearer`). No token is 401,
another station's token is 403. Playlists and manifests carry an ETag of
their bytes and answer 304 to a matching If-None-Match; audio is immutable
(named by hash) and served with Range by Starlette's FileResponse. Everything
a station fetches comes from the database (`store.published`), audio through
this node's cache, and no header derives from this node (its file times, its
paths): any node, or a balancer in front of several, gives the same bytes
and ETags. Uvicorn's access log is off because request lines carry tokens;
requests are logged here without them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import structlog
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from broadcaster import health
from broadcaster.areas import AreaRegistry
from broadcaster.audio.notice import affected_stations
from broadcaster.audio.publish import (
    PublishedSlot,
    Publisher,
    current_and_next,
    m3u,
    slot_manifest,
)
from broadcaster.metrics import register_service_metrics
from broadcaster.station_metrics import StationCollector
from broadcaster.store import published
from broadcaster.store.audio import AsRun, AsRunEvent, NoticeState, recent_notices, record_asrun
from broadcaster.store.stations import Heartbeat, record_heartbeat, record_polls

log = structlog.get_logger(__name__)

M3U_TYPE = "audio/x-mpegurl"  # not the HLS type: VLC would hand it to its HLS module
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SLOT = re.compile(r"^\d{4}(-\d+)?$")
AUDIO = re.compile(r"^[0-9a-f]{64}\.mp3$")
MEDIA_TYPES = {"m3u": M3U_TYPE, "json": "application/json"}
NOTICE_WINDOW = timedelta(days=1)  # notices older than this shape no slot any more


class Report(BaseModel):
    """One playback report from a station: an item and when it aired.

    A station agent also names the report (`id`, so a resend is stored
    once), what happened (`event`), why it failed or stopped (`reason`),
    and the slot's day and programme; a plain player sends only the first four.
    """

    model_config = ConfigDict(extra="forbid")

    item: str = Field(min_length=1, max_length=256)
    started: AwareDatetime
    finished: AwareDatetime | None = None
    slot: str | None = Field(None, max_length=64)
    id: str | None = Field(None, min_length=8, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    event: AsRunEvent | None = None
    reason: str | None = Field(None, max_length=500)
    day: date | None = None
    programme: str | None = Field(None, max_length=128)


REPORTS = TypeAdapter(list[Report] | Report)


class HeartbeatIn(BaseModel):
    """What a station agent says of itself every half minute."""

    model_config = ConfigDict(extra="forbid")

    at: AwareDatetime
    version: str = Field(max_length=64)
    cache_until: date | None = None
    disk_free: int | None = Field(None, ge=0)
    player: str = Field(max_length=32)
    last_item: str | None = Field(None, max_length=256)
    last_aired: AwareDatetime | None = None


POLL_WRITE_SECONDS = 10.0  # a station's last poll is written at most this often
WAIT_LIMIT = 60.0  # longest long-poll a station may ask for
WAIT_STEP = 0.25  # how often a long-poll looks for a new revision of the published days
# Audio never changes, so its one date is a constant: a file's time would differ by node.
AUDIO_LAST_MODIFIED = "Thu, 01 Jan 1970 00:00:00 GMT"


class Metrics:
    """Counters the station API feeds; other parts register theirs on the same registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.polls = Counter(
            "broadcaster_station_polls",
            "Station requests by kind and status",
            ["kind", "status"],
            registry=registry,
        )
        self.reports = Counter(
            "broadcaster_playback_reports",
            "Playback reports stored from stations",
            registry=registry,
        )


def make_app(
    pub: Publisher,
    stations: frozenset[str],
    *,
    engine: Engine | None,
    clock: Callable[[], datetime],
    max_body: int = 65536,
    registry: CollectorRegistry | None = None,
    areas: AreaRegistry | None = None,
    operations_api: ASGIApp | None = None,
    console: ASGIApp | None = None,
    node_plan: Callable[[], dict[str, Any]] | None = None,
    node: str | None = None,
) -> Starlette:
    """Build the ASGI app; `clock` gives the aware current time (tests pass their own).

    With `areas` (and an engine) it also serves each station's notices;
    `operations_api` (`broadcaster.api.make_api`) is mounted at `/api/v1`, `console`
    (`broadcaster.console.make_console`) at `/console/`; `node_plan` (the daemon's
    `plan_view`) is served at `/node/plan`: this node's own plan, not the database's;
    `node` is the in-process daemon's `node` (so `/healthz` can say it schedules).
    """
    metrics = Metrics(registry or CollectorRegistry())
    register_service_metrics(metrics.registry, engine)
    if engine is not None:
        metrics.registry.register(StationCollector(engine))
    api = _Api(pub, stations, engine, clock, max_body, metrics, areas, node)
    return Starlette(
        routes=[
            Route("/healthz", api.health),
            Route("/metrics", api.metrics),
            Route("/stations/{station}/audio/{name}", api.audio, methods=["GET", "HEAD"]),
            Route("/stations/{station}/reports", api.reports, methods=["POST"]),
            Route("/stations/{station}/heartbeat", api.heartbeat, methods=["POST"]),
            Route("/stations/{station}/notices.json", api.notices),
            Route("/stations/{station}/{which}.{ext}", api.relative_slot),
            Route("/stations/{station}/{day}/{slot}.{ext}", api.given_slot),
            *([Route("/node/plan", _json_of(node_plan))] if node_plan else []),
            *([Mount("/api/v1", app=operations_api)] if operations_api else []),
            *([Mount("/console", app=console)] if console is not None else []),
        ]
    )


def _json_of(view: Callable[[], dict[str, Any]]) -> Callable[[Request], Response]:
    def serve(request: Request) -> Response:
        return JSONResponse(view())

    return serve


class _Api:
    def __init__(
        self,
        pub: Publisher,
        stations: frozenset[str],
        engine: Engine | None,
        clock: Callable[[], datetime],
        max_body: int,
        metrics: Metrics,
        areas: AreaRegistry | None,
        node: str | None,
    ) -> None:
        self.pub = pub
        self.areas = areas
        self.stations = stations
        self.engine = engine
        self.clock = clock
        self.max_body = max_body
        self.m = metrics
        self.node = node
        self._polls_written: dict[str, float] = {}
        self._revision = (-1.0, 0)  # (when read, revision): one query per WAIT_STEP per node

    def health(self, request: Request) -> Response:
        """200 when the database answers and a scheduler heartbeats, else 503 with why."""
        ever: bool | None
        try:
            ever = published.ever_published(self.pub.engine)
        except Exception:  # noqa: BLE001 - the check below says why the database failed
            ever = None
        result = health.check(self.engine, self.node, self.clock(), ever)
        return JSONResponse(result.as_json(), status_code=200 if result.ok else 503)

    def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.m.registry), media_type=CONTENT_TYPE_LATEST)

    async def relative_slot(self, request: Request) -> Response:
        station, which, ext = (request.path_params[k] for k in ("station", "which", "ext"))
        if (refused := self._guard(request, station, "playlist")) is not None:
            return refused
        await self._seen(station)
        if DAY.match(which) and ext == "json":
            return await self._day_when_changed(request, station, which)
        if which not in ("current", "next") or ext not in MEDIA_TYPES:
            return self._status(
                404,
                "playlist",
                "use current.m3u, next.m3u, current.json, next.json, DATE.json or DATE/SLOT.m3u",
            )
        current, upcoming = current_and_next(self.pub, station, self.clock())
        slot = current if which == "current" else upcoming
        if slot is None:
            return self._status(404, "playlist", f"no {which} slot published")
        return self._slot_file(request, slot, ext)

    async def _day_when_changed(self, request: Request, station: str, day: str) -> Response:
        """Serve a station's day; with `?wait=SECONDS` and a matching If-None-Match,
        hold the request until the day changes (a notice, a retraction, a replan)
        or the wait ends, so an agent hears of an emergency within a second."""
        try:
            wait = min(float(request.query_params.get("wait", "0")), WAIT_LIMIT)
        except ValueError:
            return self._status(400, "playlist", "wait must be a number of seconds")
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            seen = await self._published_revision()
            response = await run_in_threadpool(self._day, request, station, day)
            if response.status_code != 304 or time.monotonic() >= deadline:
                return response
            while await self._published_revision() == seen and time.monotonic() < deadline:
                if await request.is_disconnected():
                    return response
                await asyncio.sleep(WAIT_STEP)

    async def _published_revision(self) -> int:
        """The published days' revision, read at most once per WAIT_STEP for all waiting
        stations: 10,000 long-polls cost one query four times a second, not 40,000."""
        read_at, value = self._revision
        if time.monotonic() - read_at >= WAIT_STEP:
            self._revision = (time.monotonic(), value)  # the others wait for this one read
            value = await run_in_threadpool(published.revision, self.pub.engine)
            self._revision = (time.monotonic(), value)
        return value

    def _day(self, request: Request, station: str, day: str) -> Response:
        """Serve a station's whole day as published, so it can air on when its link drops."""
        try:
            body = published.read_day(self.pub.engine, station, date.fromisoformat(day))
        except ValueError:  # a date shaped right that is no date: 2021-02-30
            body = None
        if body is None:
            return self._status(404, "playlist", "nothing published for that day")
        return self._conditional(request, body, "application/json")

    async def _seen(self, station: str) -> None:
        """Record that a station polled, at most every POLL_WRITE_SECONDS per station."""
        tick = time.monotonic()
        last = self._polls_written.get(station, -1e9)
        if self.engine is None or tick - last < POLL_WRITE_SECONDS:
            return
        self._polls_written[station] = tick
        try:
            await run_in_threadpool(record_polls, self.engine, {station: self.clock()})
        except Exception as exc:  # noqa: BLE001 - a busy database must not refuse a playlist
            log.warning("web.poll_not_recorded", station=station, detail=str(exc))

    def notices(self, request: Request) -> Response:
        """List the station's notices of the last day, live and retracted (a retracted one may
        never have aired), so a station playing one from its cache learns to stop it."""
        station = request.path_params["station"]
        if (refused := self._guard(request, station, "notices")) is not None:
            return refused
        if self.engine is None or self.areas is None:
            return self._status(404, "notices", "notices are not served here")
        now = self.clock()
        mine = [
            n
            for n in recent_notices(self.engine, since=now - NOTICE_WINDOW)
            if n.state is not NoticeState.PENDING
            if station in affected_stations(self.areas, [n])
        ]
        doc = {
            "station": station,
            "notices": [
                {
                    "id": n.id,
                    "item": f"notice-{n.id}",
                    "state": n.state.value,
                    "airs_at": n.airs_at.isoformat(),
                    "retracted_at": n.retracted_at.isoformat() if n.retracted_at else None,
                }
                for n in mine
            ],
        }
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return self._conditional(request, body, "application/json")

    def given_slot(self, request: Request) -> Response:
        station, day, slot_id, ext = (
            request.path_params[k] for k in ("station", "day", "slot", "ext")
        )
        if (refused := self._guard(request, station, "playlist")) is not None:
            return refused
        if not DAY.match(day) or not SLOT.match(slot_id) or ext not in MEDIA_TYPES:
            return self._status(404, "playlist", "no such slot")
        try:
            when = date.fromisoformat(day)
        except ValueError:
            return self._status(404, "playlist", "no such day")
        return self._slot_file(
            request, PublishedSlot(station, when, slot_id, self.clock(), 0.0), ext
        )

    def _slot_file(self, request: Request, slot: PublishedSlot, ext: str) -> Response:
        manifest = slot.manifest or slot_manifest(self.pub, slot.station, slot.day, slot.id)
        if manifest is None:
            return self._status(404, "playlist", "no such slot")
        body = (
            m3u(manifest)
            if ext == "m3u"
            else json.dumps(manifest, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        )
        log.info(
            "web.slot_served", station=slot.station, day=slot.day.isoformat(), slot=slot.id, ext=ext
        )
        return self._conditional(request, body, MEDIA_TYPES[ext])

    def _conditional(self, request: Request, body: bytes, media_type: str) -> Response:
        """Answer with an ETag of the bytes, or 304 when the station has them already."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in _etags(request.headers.get("if-none-match", "")):
            self.m.polls.labels("playlist", "304").inc()
            return Response(status_code=304, headers=headers)
        self.m.polls.labels("playlist", "200").inc()
        return Response(body, media_type=media_type, headers=headers)

    def audio(self, request: Request) -> Response:
        station, name = request.path_params["station"], request.path_params["name"]
        if (refused := self._guard(request, station, "audio")) is not None:
            return refused
        path = self.pub.store.fetch(name.removesuffix(".mp3")) if AUDIO.match(name) else None
        if path is None:
            return self._status(404, "audio", "no such audio")
        self.m.polls.labels("audio", "200").inc()
        return FileResponse(
            path,
            media_type="audio/mpeg",
            headers={
                "Cache-Control": "public, max-age=31536000, immutable",
                "ETag": f'"{name.removesuffix(".mp3")}"',
                "Last-Modified": AUDIO_LAST_MODIFIED,
            },
        )

    async def reports(self, request: Request) -> Response:
        station = request.path_params["station"]
        if (refused := self._guard(request, station, "report")) is not None:
            return refused
        body = await _read_limited(request, self.max_body)
        if body is None:
            return self._status(413, "report", f"body larger than {self.max_body} bytes")
        try:
            parsed = REPORTS.validate_json(body)
        except ValidationError as exc:
            problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            return self._status(422, "report", "; ".join(problems[:5]))
        items = parsed if isinstance(parsed, list) else [parsed]
        now = self.clock()
        rows = [
            AsRun(
                station,
                r.slot,
                r.item,
                r.started,
                r.finished,
                now,
                r.id,
                r.event,
                r.day.isoformat() if r.day else None,
                r.programme,
                r.reason,
            )
            for r in items
        ]
        stored = len(rows)
        if self.engine is not None:
            stored = await run_in_threadpool(record_asrun, self.engine, rows)
        self.m.reports.inc(stored)
        self.m.polls.labels("report", "202").inc()
        log.info("web.reports_stored", station=station, count=stored, again=len(rows) - stored)
        return JSONResponse({"stored": stored, "duplicates": len(rows) - stored}, status_code=202)

    async def heartbeat(self, request: Request) -> Response:
        station = request.path_params["station"]
        if (refused := self._guard(request, station, "heartbeat")) is not None:
            return refused
        body = await _read_limited(request, self.max_body)
        if body is None:
            return self._status(413, "heartbeat", f"body larger than {self.max_body} bytes")
        try:
            beat = HeartbeatIn.model_validate_json(body)
        except ValidationError as exc:
            problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            return self._status(422, "heartbeat", "; ".join(problems[:5]))
        row = Heartbeat(
            station,
            self.clock(),  # the centre's clock: a station's may drift
            beat.version,
            beat.cache_until.isoformat() if beat.cache_until else None,
            beat.disk_free,
            beat.player,
            beat.last_item,
            beat.last_aired,
        )
        if self.engine is not None:
            await run_in_threadpool(record_heartbeat, self.engine, row)
        self.m.polls.labels("heartbeat", "204").inc()
        return Response(status_code=204)

    def _guard(self, request: Request, station: str, kind: str) -> Response | None:
        """Refuse unknown stations, missing tokens and other stations' tokens."""
        if station not in self.stations:
            return self._status(404, kind, "unknown station")
        token = request.query_params.get("token") or _bearer(request)
        if not token:
            return self._status(401, kind, "token required: ?token= or Authorization: Bearer")
        if self.pub.tokens.valid_for(station, token):
            return None
        owner = any(self.pub.tokens.valid_for(s, token) for s in self.stations)
        log.warning("web.token_refused", station=station, other_station=owner)
        if owner:
            return self._status(403, kind, "this token belongs to another station")
        return self._status(401, kind, "token not valid")

    def _status(self, status: int, kind: str, message: str) -> Response:
        self.m.polls.labels(kind, str(status)).inc()
        return JSONResponse({"error": message}, status_code=status)


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """Read the body, giving up (None) as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def uvicorn_server(app: Starlette, bind: str) -> uvicorn.Server:
    """A uvicorn server for `app` without the access log (request lines carry tokens)."""
    host, _, port = bind.rpartition(":")
    config = uvicorn.Config(
        app, host=host, port=int(port), access_log=False, log_config=None, lifespan="off"
    )
    return uvicorn.Server(config)


class BackgroundServer:
    """Run the station API inside the daemon, on a thread of its own."""

    def __init__(self, app: Starlette, bind: str) -> None:
        self._bind = bind
        self._server = uvicorn_server(app, bind)
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Start serving and return once the socket listens, so READY means reachable."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the station API could not listen on {self._bind}")
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
