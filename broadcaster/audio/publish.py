"""Publish today's and tomorrow's playlists in the database, where every node serves them.

For each station and slot a manifest: air times, durations, priorities,
relay sources and absolute item URLs with the station's token in every one
(Liquidsoap resolves no relative URL; mpv drops a playlist's query string for
relative items). The slot's `.m3u` is the manifest's playable items,
produced by `m3u()` when a station asks. One playlist per slot, because
Liquidsoap restarts a reloaded playlist from its first item.

A station's manifests for one day are stored together in one document (one
row of `published_days`): at 10,000 communes the number of writes is what
costs, and one document lets a station fetch its whole day before its link
drops. A document is written only when its bytes change, so ETags stay
stable; the audio it names is in the database before it is. Communes
hearing the same occurrences in the same languages share one rendering of
their day (`manifest.DayTemplate`); what is left per station is joining its
code and token in, hashing and, when changed, the write.

The publishing node renders; every node serves the stored bytes (the audio
from a local cache filled from the database by hash), so any node, or a
balancer in front of several, answers alike. `data_dir/publish/audio/` is
that cache, plus the renders this node made.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Engine

from broadcaster.areas import Area, AreaKind, AreaRegistry
from broadcaster.audio.library import Clip, Library
from broadcaster.audio.manifest import DayTemplate, Renderer
from broadcaster.audio.playlist import Dropped, playlist, van_rounds, with_recordings
from broadcaster.audio.render import (
    AudioStore,
    LoudnessTarget,
    Rendered,
    normalise,
    normalised_key,
    render_sequence,
)
from broadcaster.audio.settings import AudioSettings
from broadcaster.audio.tokens import Tokens, load_tokens
from broadcaster.occurrence import (
    Channel,
    Occurrence,
    Priority,
    content_from_json,
    content_to_json,
)
from broadcaster.store import published

if TYPE_CHECKING:
    from broadcaster.config import Settings

log = structlog.get_logger(__name__)

VAN_PREFIX = "van-"


@dataclass(frozen=True)
class Publisher:
    """Where and how to publish: the database, this node's audio folder, the public URL,
    tokens and audio settings."""

    root: Path
    public_url: str
    tz: tzinfo
    tokens: Tokens
    audio: AudioSettings
    engine: Engine

    @property
    def store(self) -> AudioStore:
        return AudioStore(self.root / "audio", self.engine)

    @property
    def target(self) -> LoudnessTarget:
        return loudness_target(self.audio)

    def url(self, station: str, path: str) -> str:
        token = self.tokens.for_station(station)
        return f"{self.public_url}/stations/{station}/{path}?token={token}"


def loudness_target(a: AudioSettings) -> LoudnessTarget:
    return LoudnessTarget(a.loudness_lufs, a.true_peak_dbtp, a.loudness_range_lu, a.bitrate_kbps)


def aired_durations(library: Library, settings: Settings, engine: Engine | None) -> Library:
    """The library with the durations stations air, where a publisher has normalised a
    clip already (normalising trims silence); the catalogue's elsewhere. Reads only.

    With the database, what any node rendered counts (its `published_renders`), so
    every node lays slots out alike; without it, this node's own renders."""
    target = loudness_target(settings.audio)
    keys = {clip.sha256: normalised_key(clip.sha256, target) for clip in library.clips}
    if engine is not None:
        durations = published.render_durations(engine, keys.values())
    else:
        store = AudioStore(settings.data_dir / "publish" / "audio")
        local = {key: store.lookup(key) for key in keys.values()}
        durations = {key: done.duration for key, done in local.items() if done is not None}
    clips = []
    for clip in library.clips:
        duration = durations.get(keys[clip.sha256])
        clips.append(clip if duration is None else replace(clip, duration=duration))
    return Library(library.root, tuple(clips))


def publisher(settings: Settings, engine: Engine) -> Publisher:
    """Build the publisher the daemon, `serve` and the CLI share, from the settings."""
    secret = settings.audio.token_secret
    tokens = load_tokens(secret.get_secret_value() if secret else None, settings.data_dir, engine)
    return Publisher(
        settings.data_dir / "publish",
        settings.public_url,
        settings.tz,
        tokens,
        settings.audio,
        engine,
    )


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
    for occ in with_recordings(occurrences, library):
        by_area[occ.area].append(occ)
    wanted = set(only) if only is not None else None
    job = _Job(pub, rendered, PublishReport(), {}, published.day_hashes(pub.engine, days))
    renderer = Renderer(pub.public_url, pub.tz, rendered, job.mix)
    shapes: dict[tuple[Hashable, ...], DayTemplate] = {}
    for code, area in stations(registry).items():
        if wanted is not None and code not in wanted:
            continue
        job.report.stations += 1
        token = pub.tokens.for_station(code)
        if area.kind is AreaKind.COMMUNE:
            covering = [a.code for a in registry.ancestors(area.code)]
            mine = [o for c in (area.code, *covering) for o in by_area.get(c, ())]
            # The slots read of the commune only its languages (and its code, to pick
            # `mine`), so communes hearing the same occurrences share one rendering.
            signature = tuple(_signature(o) for o in mine)
            for day in days:
                key = (day, area.languages, signature)
                template = shapes.get(key)
                if template is None:
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
                    template = shapes[key] = renderer.commune_day(day, slots)
                job.write_day(code, day, template, template.fill(code, area.code, token))
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
                template = renderer.van_day(area.code, day, rounds, pub.audio.gap_seconds)
                job.write_day(code, day, template, template.fill(code, area.code, token))
    job.flush()
    report = job.report
    # Keep yesterday: a slot airing over midnight still needs it.
    published.drop_days_before(pub.engine, today - timedelta(days=1))
    _log_dropped(report.dropped)
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


def _log_dropped(dropped: Sequence[tuple[str, str, Dropped]]) -> None:
    """One warning per dropped item and reason, not per slot: a district's worth of
    stations dropping the same clip is one fact for the operator, not thousands."""
    where: dict[tuple[str | None, str, str | None, str, str], list[tuple[str, str]]] = {}
    for station, slot_id, d in dropped:
        key = (d.programme, d.item, d.language, d.priority.value, d.reason)
        where.setdefault(key, []).append((station, slot_id))
    for (programme, item, language, priority, reason), places in where.items():
        log.warning(
            "audio.item_dropped",
            programme=programme,
            item=item,
            language=language,
            priority=priority,
            reason=reason,
            slots=len(places),
            stations=sorted({station for station, _ in places})[:20],
            slot_ids=sorted({slot_id for _, slot_id in places}),
        )


@dataclass
class _Job:
    pub: Publisher
    rendered: dict[tuple[str, str], Rendered]
    report: PublishReport
    mixes: dict[tuple[str, ...], Rendered | None]
    stored: dict[tuple[str, str], str]  # (station, day) → hash of the published document
    changed: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    removed: list[tuple[str, str]] = field(default_factory=list)
    uploaded: set[str] = field(default_factory=set)

    def write_day(self, station: str, day: date, template: DayTemplate, data: bytes) -> None:
        """Store a station's slots for one day when they changed; a day with none has no row."""
        key = (station, day.isoformat())
        for slot_id, dropped in template.slots:
            self.report.slots += 1
            self.report.dropped += [(station, slot_id, d) for d in dropped]
        if template.slots:
            digest = hashlib.sha256(data).hexdigest()
            if self.stored.get(key) == digest:
                self.report.unchanged += 1
                return
            self.changed[key] = (data, digest)
            self.report.written += 1
        elif key in self.stored:
            self.removed.append(key)
            self.report.removed += 1
        if len(self.changed) + len(self.removed) >= published.CHUNK:
            self.flush()

    def flush(self) -> None:
        """Store the audio the days name (before them: a station never gets a URL no node
        can serve), then the days, in one transaction."""
        audio = {r.sha256 for r in self.rendered.values()}
        audio |= {m.sha256 for m in self.mixes.values() if m is not None}
        self.pub.store.upload(audio - self.uploaded)
        self.uploaded |= audio
        published.write_days(self.pub.engine, self.changed, self.removed)
        self.changed, self.removed = {}, []

    def mix(self, parts: list[Rendered]) -> Rendered | None:
        """Render a slot's audio once per distinct sequence of items, if configured."""
        if not self.pub.audio.render_slots or not parts:
            return None
        key = tuple(p.sha256 for p in parts)
        if key not in self.mixes:
            a = self.pub.audio
            self.mixes[key] = render_sequence(
                parts, a.gap_seconds, self.pub.target, self.pub.store, a.mix_max_seconds
            )
        return self.mixes[key]


def m3u(manifest: dict[str, Any]) -> bytes:
    """List a slot's items for a plain player: clips, and each relay's stream URL.

    A relay's `#EXTINF` gives its planned length, but players (mpv, VLC) play
    a stream until it ends; the station agent stops it on time and airs the
    fallback when it fails. A van round's loop is written out `repeat` times
    so the list stays finite and a player reaches its end.
    """
    lines = ["#EXTM3U"]
    for _ in range(manifest.get("repeat", 1)):
        for item in manifest["items"]:
            if item["kind"] == "relay":
                lines.append(f"#EXTINF:{round(item['duration'])},{_one_line(item['title'])}")
                lines.append(item["url"])
            elif "url" in item:
                title = _one_line(f"{item['title']} ({item['language']})")
                lines.append(f"#EXTINF:{round(item['duration'])},{title}")
                lines.append(item["url"])
    return ("\n".join(lines) + "\n").encode("utf-8")


def _one_line(text: str) -> str:
    """A title cannot break the playlist's line structure."""
    return " ".join(text.split())


def _signature(occ: Occurrence) -> tuple[Hashable, ...]:
    """What of an occurrence its slots depend on, all but the area, as a cache key.

    The time is keyed in UTC: datetimes in one zone compare by wall clock,
    so the two 01:30s of a DST fold would otherwise share a key.
    """
    return (
        occ.programme,
        occ.channel,
        occ.at.astimezone(UTC),
        occ.priority,
        occ.content,
        occ.duration,
    )


AIRED = (Channel.LOUDSPEAKER, Channel.RELAY, Channel.VAN)


def save_plan(engine: Engine, occurrences: Sequence[Occurrence]) -> None:
    """Keep the occurrences published, so an emergency can be added without the planner."""
    rows = [
        {
            "programme": o.programme,
            "channel": o.channel.value,
            "area": o.area,
            "at": o.at.isoformat(),
            "priority": o.priority.value,
            "content": content_to_json(o.content),
            "duration": o.duration.total_seconds() if o.duration else None,
            "level": o.level,
        }
        for o in occurrences
        if o.channel in AIRED
    ]
    published.save_plan(engine, json.dumps(rows, ensure_ascii=False))


def load_plan(engine: Engine) -> list[Occurrence]:
    """Read the saved plan back; one from an older version is no plan, logged."""
    text = published.load_plan(engine)
    if text is None:
        return []
    try:
        return [
            Occurrence(
                r["programme"],
                Channel(r["channel"]),
                r["area"],
                datetime.fromisoformat(r["at"]),
                Priority(r["priority"]),
                content_from_json(r["content"]),
                timedelta(seconds=r["duration"]) if r["duration"] else None,
                r.get("level", ""),
            )
            for r in json.loads(text)
        ]
    except (ValueError, KeyError, TypeError) as exc:
        log.error("audio.plan_unreadable", detail=f"{type(exc).__name__}: {exc}")
        return []


@dataclass(frozen=True)
class PublishedSlot:
    """A published slot as found on disk, for the API and `broadcaster stations`.

    A listed slot keeps the manifest it was read from: a republish (a notice) may
    rename or drop the slot between two reads, and a station asking for its current
    slot must get the slot that was current, never a 404."""

    station: str
    day: date
    id: str
    start: datetime
    duration: float
    manifest: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def finish(self) -> datetime:
        return self.start + timedelta(seconds=self.duration)


def day_document(pub: Publisher, station: str, day: date) -> dict[str, Any] | None:
    """Read a station's published day, or None when nothing is published for it."""
    body = published.read_day(pub.engine, station, day)
    return json.loads(body) if body is not None else None  # type: ignore[no-any-return]


def slot_manifest(pub: Publisher, station: str, day: date, slot_id: str) -> dict[str, Any] | None:
    doc = day_document(pub, station, day)
    return next((m for m in doc["slots"] if m["slot"] == slot_id), None) if doc else None


def published_slots(pub: Publisher, station: str, day: date) -> list[PublishedSlot]:
    """List one station's slots for a day, in airing order."""
    doc = day_document(pub, station, day)
    found = [
        PublishedSlot(
            station, day, m["slot"], datetime.fromisoformat(m["start"]), float(m["duration"]), m
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
