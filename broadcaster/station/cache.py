"""The agent's cache: day documents and audio files, fetched ahead, never half written.

Layout under the cache folder:
    days/<YYYY-MM-DD>.json   the station's day document as the centre sent it
    days/<YYYY-MM-DD>.etag   its ETag, for If-None-Match
    audio/<sha256>.mp3       every file a kept day needs, checked against its hash

Each file is written to a temporary name in the same folder, flushed and
renamed, so a power cut leaves either the old file or the new one. An audio
file whose bytes do not hash to the manifest's SHA-256 is thrown away.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import structlog

from broadcaster.station.plan import BadDay, Source, cues, sources

log = structlog.get_logger(__name__)

MAX_DAY_BYTES = 8 << 20
MAX_AUDIO_BYTES = 1 << 30


class FetchError(RuntimeError):
    """The centre could not be reached or answered badly."""


class Cache:
    """Day documents and audio for one station, on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.days_dir = root / "days"
        self.audio_dir = root / "audio"
        for folder in (self.days_dir, self.audio_dir):
            folder.mkdir(parents=True, exist_ok=True)

    # --- days ------------------------------------------------------------------

    def days(self) -> list[dict[str, Any]]:
        """Every cached day document, oldest first; a damaged file is skipped and logged."""
        found = []
        for path in sorted(self.days_dir.glob("????-??-??.json")):
            try:
                found.append(json.loads(path.read_bytes()))
            except ValueError as exc:
                log.error("station.cache_day_unreadable", file=str(path), detail=str(exc))
        return found

    def etag(self, day: date) -> str | None:
        try:
            return (self.days_dir / f"{day.isoformat()}.etag").read_text().strip() or None
        except FileNotFoundError:
            return None

    def fetch_day(self, client: httpx.Client, url: str, day: date, wait: float = 0.0) -> bool:
        """Bring one day up to date; True when it changed. `wait` long-polls the centre."""
        headers = {"If-None-Match": tag} if (tag := self.etag(day)) else {}
        params = {"wait": f"{wait:g}"} if wait else {}
        try:
            response = client.get(url, headers=headers, params=params, timeout=wait + 15)
        except httpx.HTTPError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 304:
            return False
        if response.status_code == 404:
            return self._forget(day)
        if response.status_code != 200:
            raise FetchError(f"day {day}: HTTP {response.status_code} {response.text[:200]}")
        if len(response.content) > MAX_DAY_BYTES:
            raise FetchError(f"day {day}: document larger than {MAX_DAY_BYTES} bytes")
        try:
            doc = json.loads(response.content)
            cues([doc])  # refuse a malformed day whole, keep the last good one
        except (ValueError, BadDay) as exc:
            raise FetchError(f"day {day}: {exc}") from exc
        if doc.get("date") != day.isoformat():
            raise FetchError(f"day {day}: the centre sent {doc.get('date')!r}")
        write_atomic(self.days_dir / f"{day.isoformat()}.json", response.content)
        write_atomic(
            self.days_dir / f"{day.isoformat()}.etag", response.headers.get("etag", "").encode()
        )
        return True

    def _forget(self, day: date) -> bool:
        """The centre has nothing for that day (any more): drop our copy."""
        changed = False
        for suffix in (".json", ".etag"):
            path = self.days_dir / f"{day.isoformat()}{suffix}"
            if path.exists():
                path.unlink()
                changed = True
        return changed

    def prune(self, keep_from: date) -> None:
        """Drop days before `keep_from` and audio no kept day needs."""
        for path in self.days_dir.glob("????-??-??.*"):
            if path.name[:10] < keep_from.isoformat():
                path.unlink(missing_ok=True)
        wanted = set(sources(cues(self.days())))
        for path in self.audio_dir.glob("*.mp3"):
            if path.stem not in wanted:
                path.unlink(missing_ok=True)
                log.info("station.cache_pruned", file=path.name)

    # --- audio -----------------------------------------------------------------

    def path(self, source: Source) -> Path | None:
        """The cached file of a source, if it is here."""
        if source.sha256 is None:
            return None
        path = self.audio_dir / f"{source.sha256}.mp3"
        return path if path.is_file() else None

    def fetch_audio(self, client: httpx.Client, wanted: Mapping[str, Source]) -> list[str]:
        """Fetch every file not yet cached; return the problems (one line per file)."""
        problems = []
        for sha, source in wanted.items():
            if (self.audio_dir / f"{sha}.mp3").is_file():
                continue
            try:
                self._download(client, source)
            except FetchError as exc:
                problems.append(f"{source.name}: {exc}")
                log.warning("station.audio_fetch_failed", item=source.name, detail=str(exc))
        return problems

    def _download(self, client: httpx.Client, source: Source) -> None:
        assert source.sha256 is not None
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.audio_dir, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out, client.stream("GET", source.url, timeout=30) as r:
                if r.status_code != 200:
                    raise FetchError(f"HTTP {r.status_code}")
                for chunk in r.iter_bytes(65536):
                    size += len(chunk)
                    if size > MAX_AUDIO_BYTES:
                        raise FetchError(f"larger than {MAX_AUDIO_BYTES} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != source.sha256:
                raise FetchError(f"SHA-256 {digest.hexdigest()[:12]}… is not the manifest's")
            os.replace(tmp, self.audio_dir / f"{source.sha256}.mp3")
            log.info("station.audio_cached", item=source.name, bytes=size)
        except httpx.HTTPError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def missing(self, wanted: Iterable[str]) -> list[str]:
        return [sha for sha in wanted if not (self.audio_dir / f"{sha}.mp3").is_file()]


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
