"""Publish today's and tomorrow's playlists as files stations fetch over HTTP.

For each station and slot a manifest: air times, durations, priorities,
relay sources and absolute item URLs with the station's token in every one
(Liquidsoap resolves no relative URL; mpv drops a playlist's query string for
relative items). The slot's `.m3u` is the manifest's playable items,
produced by `m3u()` when a station asks. One playlist per slot, because
Liquidsoap restarts a reloaded playlist from its first item.

A station's manifests for one day are stored together in one file: at
10,000 communes the number of files created is what costs (measured here:
40,000 per-slot files took 18 s, mostly open and mkdir), and one document
lets a station fetch its whole day before its link drops. Every file is
written through a temporary file and a rename, and only when its bytes
change, so a poll never sees half a file and ETags stay stable.

Layout under `data_dir/publish/`:
    audio/<sha256>.mp3                         immutable, content-addressed
    stations/<YYYY-MM-DD>/<station>.json       {"station", "date", "slots": [manifest…]}
    plan.json                                  the occurrences last published
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from broadcaster.areas import Area, AreaKind, AreaRegistry
from broadcaster.audio.library import Clip, Library, write_atomic
from broadcaster.audio.playlist import (
    Dropped,
    Entry,
    EntryKind,
    Occurrence,
    Slot,
    VanRound,
    playlist,
    van_rounds,
)
from broadcaster.audio.render import (
    AudioStore,
    LoudnessTarget,
    Rendered,
    normalise,
    render_sequence,
)
from broadcaster.audio.settings import AudioSettings
from broadcaster.audio.tokens import Tokens, load_tokens

if TYPE_CHECKING:
    from broadcaster.config import Settings

log = structlog.get_logger(__name__)

VAN_PREFIX = "van-"


@dataclass(frozen=True)
class Publisher:
    """Where and how to publish: the folder, the public URL, tokens and audio settings."""

    root: Path
    public_url: str
    tz: tzinfo
    tokens: Tokens
    audio: AudioSettings

    @property
    def store(self) -> AudioStore:
        return AudioStore(self.root / "audio")

    @property
    def target(self) -> LoudnessTarget:
        a = self.audio
        return LoudnessTarget(
            a.loudness_lufs, a.true_peak_dbtp, a.loudness_range_lu, a.bitrate_kbps
        )

    def day_file(self, station: str, day: date) -> Path:
        return self.root / "stations" / day.isoformat() / f"{station}.json"

    def url(self, station: str, path: str) -> str:
        token = self.tokens.for_station(station)
        return f"{self.public_url}/stations/{station}/{path}?token={token}"


def publisher(settings: Settings) -> Publisher:
    """Build the publisher the daemon, `serve` and the CLI share, from the settings."""
    secret = settings.audio.token_secret
    tokens = load_tokens(secret.get_secret_value() if secret else None, settings.data_dir)
    return Publisher(
        settings.data_dir / "publish", settings.public_url, settings.tz, tokens, settings.audio
    )


@dataclass(frozen=True)
class PlannedOccurrence:
    """An occurrence as stored in plan.json; the same shape as the planner's."""

    programme: str
    channel: str
    area: str
    at: datetime
    priority: str = "normal"
    content: Any = None
    duration: timedelta | None = None


@dataclass
class PublishReport:
    """What a publication did, for logs, the CLI and the benchmark."""

    written: int = 0
    unchanged: int = 0
    removed: int = 0
    slots: int = 0
    stations: int = 0
    dropped: list[tuple[str, str, Dropped]] = field(default_factory=list)


def stations(registry: AreaRegistry) -> dict[str, Area]:
    """Every playlist consumer: each commune's station, and each district's van."""
    found: dict[str, Area] = {}
    for area in registry.all():
        if area.kind is AreaKind.COMMUNE and area.station is not None:
            found[area.station.code] = area
        elif area.kind is AreaKind.DISTRICT:
            found[VAN_PREFIX + area.code] = area
    return found


def prepare_library(
    library: Library, pub: Publisher
) -> tuple[Library, dict[tuple[str, str], Rendered]]:
    """Normalise every clip once (cached by hash) and give each its aired duration."""
    rendered: dict[tuple[str, str], Rendered] = {}
    aired: list[Clip] = []
    for clip in library.clips:
        done = normalise(library.path(clip), clip.sha256, pub.target, pub.store)
        rendered[(clip.id, clip.language)] = done
        aired.append(replace(clip, duration=done.duration))
    return Library(library.root, tuple(aired)), rendered


def publish(
    registry: AreaRegistry,
    occurrences: Sequence[Occurrence],
    library: Library,
    *,
    now: datetime,
    pub: Publisher,
    only: Iterable[str] | None = None,
    rendered: dict[tuple[str, str], Rendered] | None = None,
) -> PublishReport:
    """Write every station's slots for today and the days after; `only` limits the stations.

    `library` must carry aired durations and `rendered` the normalised files,
    both from `prepare_library`; pass them in to publish repeatedly without
    re-checking the cache.
    """
    if rendered is None:
        library, rendered = prepare_library(library, pub)
    today = now.astimezone(pub.tz).date()
    days = [today + timedelta(days=n) for n in range(pub.audio.days_ahead)]
    by_area: dict[str, list[Occurrence]] = defaultdict(list)
    for occ in occurrences:
        by_area[occ.area].append(occ)
    wanted = set(only) if only is not None else None
    job = _Job(pub, rendered, PublishReport(), {})
    for code, area in stations(registry).items():
        if wanted is not None and code not in wanted:
            continue
        job.report.stations += 1
        if area.kind is AreaKind.COMMUNE:
            covering = [a.code for a in registry.ancestors(area.code)]
            mine = [o for c in (area.code, *covering) for o in by_area.get(c, ())]
            for day in days:
                slots = playlist(
                    area,
                    day,
                    mine,
                    library,
                    tz=pub.tz,
                    chime=pub.audio.chime,
                    gap=pub.audio.gap_seconds,
                    covering=covering,
                )
                job.write_day(
                    code, day, [(s.id, _slot_manifest(job, code, area, day, s)) for s in slots]
                )
        else:
            route = registry.communes_under(area.code)
            for day in days:
                rounds = van_rounds(
                    area,
                    route,
                    day,
                    by_area.get(area.code, ()),
                    library,
                    tz=pub.tz,
                    round_seconds=pub.audio.van_round_minutes * 60,
                    chime=pub.audio.chime,
                    gap=pub.audio.gap_seconds,
                )
                job.write_day(
                    code, day, [(r.id, _round_manifest(job, code, area, day, r)) for r in rounds]
                )
    report = job.report
    _remove_old_days(pub, today)
    for station, slot_id, dropped in report.dropped:
        log.warning(
            "audio.item_dropped",
            station=station,
            slot=slot_id,
            programme=dropped.programme,
            item=dropped.item,
            language=dropped.language,
            priority=dropped.priority.value,
            reason=dropped.reason,
        )
    log.info(
        "audio.published",
        stations=report.stations,
        slots=report.slots,
        written=report.written,
        unchanged=report.unchanged,
        removed=report.removed,
        dropped=len(report.dropped),
    )
    return report


def _remove_old_days(pub: Publisher, today: date) -> None:
    """Drop days before yesterday: a slot airing over midnight still needs yesterday."""
    folder = pub.root / "stations"
    for old in folder.glob("????-??-??") if folder.is_dir() else ():
        if old.name < (today - timedelta(days=1)).isoformat():
            shutil.rmtree(old)


@dataclass
class _Job:
    pub: Publisher
    rendered: dict[tuple[str, str], Rendered]
    report: PublishReport
    mixes: dict[tuple[str, ...], Rendered | None]

    def write_day(self, station: str, day: date, slots: list[tuple[str, dict[str, Any]]]) -> None:
        """Write a station's slots for one day; a day with none leaves no file."""
        path = self.pub.day_file(station, day)
        for slot_id, manifest in slots:
            self.report.slots += 1
            self.report.dropped += [(station, slot_id, d) for d in manifest.pop("_dropped")]
        if slots:
            self._write(
                path,
                _json_bytes(
                    {"station": station, "date": day.isoformat(), "slots": [m for _, m in slots]}
                ),
            )
        elif path.exists():
            path.unlink()
            self.report.removed += 1

    def _write(self, path: Path, data: bytes) -> None:
        try:
            if path.read_bytes() == data:
                self.report.unchanged += 1
                return
        except FileNotFoundError:
            pass
        write_atomic(path, data)
        self.report.written += 1

    def mix(self, parts: list[Rendered]) -> Rendered | None:
        """Render a slot's audio once per distinct sequence of items, if configured."""
        if not self.pub.audio.render_slots or not parts:
            return None
        key = tuple(p.sha256 for p in parts)
        if key not in self.mixes:
            a = self.pub.audio
            self.mixes[key] = render_sequence(
                parts, a.gap_seconds, self.pub.target, self.pub.store, a.pydub_max_seconds
            )
        return self.mixes[key]


def _slot_manifest(job: _Job, station: str, area: Area, day: date, slot: Slot) -> dict[str, Any]:
    pub = job.pub
    items = [_item(job, station, slot.start, e) for e in slot.entries]
    mix = job.mix([job.rendered[(e.clip.id, e.clip.language)] for e in slot.entries if e.clip])
    return {
        "station": station,
        "commune": area.code,
        "date": day.isoformat(),
        "slot": slot.id,
        "start": _iso(slot.start, pub.tz),
        "end": _iso(slot.end, pub.tz) if slot.end else None,
        "duration": round(slot.duration, 3),
        "playlist_url": pub.url(station, f"{day.isoformat()}/{slot.id}.m3u"),
        "audio_url": pub.url(station, f"audio/{mix.name}") if mix else None,
        "audio_duration": round(mix.duration, 3) if mix else None,
        "items": items,
        "dropped": [_dropped(d) for d in slot.dropped],
        "_dropped": slot.dropped,
    }


def _round_manifest(
    job: _Job, station: str, area: Area, day: date, rnd: VanRound
) -> dict[str, Any]:
    pub = job.pub
    gap = pub.audio.gap_seconds
    length = rnd.loop_duration + gap
    loop = [job.rendered[(e.clip.id, e.clip.language)] for e in rnd.loop if e.clip]
    mix = job.mix(loop * rnd.repeat)
    return {
        "station": station,
        "district": area.code,
        "date": day.isoformat(),
        "slot": rnd.id,
        "start": _iso(rnd.start, pub.tz),
        "end": None,
        "duration": round(length * rnd.repeat - gap, 3) if rnd.repeat else 0.0,
        "repeat": rnd.repeat,
        "route": list(rnd.route),
        "playlist_url": pub.url(station, f"{day.isoformat()}/{rnd.id}.m3u"),
        "audio_url": pub.url(station, f"audio/{mix.name}") if mix else None,
        "audio_duration": round(mix.duration, 3) if mix else None,
        "loop_duration": round(rnd.loop_duration, 3),
        "items": [_item(job, station, rnd.start, e) for e in rnd.loop],
        "dropped": [_dropped(d) for d in rnd.dropped],
        "_dropped": rnd.dropped,
    }


def _item(job: _Job, station: str, start: datetime, entry: Entry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": entry.kind.value,
        "programme": entry.programme,
        "priority": entry.priority.value,
        "offset": round(entry.offset, 3),
        "duration": round(entry.duration, 3),
        "air_time": _iso(start + timedelta(seconds=entry.offset), job.pub.tz),
    }
    if entry.kind is EntryKind.RELAY:
        item["source"] = entry.source
    elif entry.clip is not None:
        done = job.rendered[(entry.clip.id, entry.clip.language)]
        item |= {
            "clip": entry.clip.id,
            "language": entry.clip.language,
            "title": entry.clip.title,
            "sha256": done.sha256,
            "url": job.pub.url(station, f"audio/{done.name}"),
        }
    return item


def _dropped(d: Dropped) -> dict[str, Any]:
    return {**asdict(d), "priority": d.priority.value}


def m3u(manifest: dict[str, Any]) -> bytes:
    """List a slot's playable items; a relay is live, so it stays in the manifest only.

    A van round's loop is written out `repeat` times so the list stays finite
    and a player reaches its end.
    """
    lines = ["#EXTM3U"]
    for _ in range(manifest.get("repeat", 1)):
        for item in manifest["items"]:
            if "url" in item:
                lines.append(
                    f"#EXTINF:{round(item['duration'])},{item['title']} ({item['language']})"
                )
                lines.append(item["url"])
    return ("\n".join(lines) + "\n").encode("utf-8")


def _json_bytes(obj: Any) -> bytes:
    """Compact JSON: the C encoder, which indent= would turn off, and smaller polls."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_skip).encode("utf-8")


def _skip(value: Any) -> Any:
    raise TypeError(f"not serialisable in a manifest: {value!r}")


def _iso(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="seconds")


def save_plan(root: Path, occurrences: Sequence[Occurrence]) -> None:
    """Keep the occurrences published, so an emergency can be added without the planner."""
    rows = [
        {
            "programme": o.programme,
            "channel": o.channel,
            "area": o.area,
            "at": o.at.isoformat(),
            "priority": o.priority,
            "content": _plain(o.content),
            "duration": o.duration.total_seconds() if o.duration else None,
        }
        for o in occurrences
        if o.channel in ("loudspeaker", "relay", "van")
    ]
    write_atomic(root / "plan.json", json.dumps(rows, ensure_ascii=False).encode("utf-8"))


def load_plan(root: Path) -> list[PlannedOccurrence]:
    path = root / "plan.json"
    if not path.exists():
        return []
    return [
        PlannedOccurrence(
            r["programme"],
            r["channel"],
            r["area"],
            datetime.fromisoformat(r["at"]),
            r["priority"],
            r["content"],
            timedelta(seconds=r["duration"]) if r["duration"] else None,
        )
        for r in json.loads(path.read_text(encoding="utf-8"))
    ]


def _plain(content: Any) -> Any:
    if content is None or isinstance(content, str | int | float | bool):
        return content
    if isinstance(content, dict):
        return {str(k): _plain(v) for k, v in content.items()}
    if hasattr(content, "__dataclass_fields__"):
        return _plain(asdict(content))
    return [_plain(c) for c in content]


@dataclass(frozen=True)
class PublishedSlot:
    """A published slot as found on disk, for the API and `broadcaster stations`."""

    station: str
    day: date
    id: str
    start: datetime
    duration: float

    @property
    def finish(self) -> datetime:
        return self.start + timedelta(seconds=self.duration)


def day_document(pub: Publisher, station: str, day: date) -> dict[str, Any] | None:
    """Read a station's published day, or None when nothing is published for it."""
    try:
        return json.loads(pub.day_file(station, day).read_bytes())  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None


def slot_manifest(pub: Publisher, station: str, day: date, slot_id: str) -> dict[str, Any] | None:
    doc = day_document(pub, station, day)
    return next((m for m in doc["slots"] if m["slot"] == slot_id), None) if doc else None


def published_slots(pub: Publisher, station: str, day: date) -> list[PublishedSlot]:
    """List one station's slots for a day, in airing order."""
    doc = day_document(pub, station, day)
    found = [
        PublishedSlot(
            station, day, m["slot"], datetime.fromisoformat(m["start"]), float(m["duration"])
        )
        for m in (doc["slots"] if doc else [])
    ]
    return sorted(found, key=lambda s: s.start)


def current_and_next(
    pub: Publisher,
    station: str,
    now: datetime,
) -> tuple[PublishedSlot | None, PublishedSlot | None]:
    """Find the slot airing at `now` and the one after it (looking into tomorrow)."""
    today = now.astimezone(pub.tz).date()
    slots = [
        s
        for d in (today - timedelta(days=1), today, today + timedelta(days=1))
        for s in published_slots(pub, station, d)
    ]
    current = next((s for s in reversed(slots) if s.start <= now < s.finish), None)
    upcoming = next((s for s in slots if s.start > now), None)
    return current, upcoming


def playlist_url(pub: Publisher, slot: PublishedSlot, suffix: str = ".m3u") -> str:
    return pub.url(slot.station, f"{slot.day.isoformat()}/{slot.id}{suffix}")
