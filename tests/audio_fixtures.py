"""Shared values for the audio tests: a small library, occurrences, communes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from broadcaster.areas import Area, AreaKind, Station
from broadcaster.audio.library import Clip, ClipKind, Library

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Occ:
    """The planner's Occurrence shape, for tests of the pure builder."""

    programme: str
    channel: str
    area: str
    at: datetime
    priority: str = "normal"
    content: Any = None
    duration: timedelta | None = None


def local(hhmm: str, day: int = 1) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(2021, 9, day, hour, minute, tzinfo=TZ)


def clip(clip_id: str, language: str, seconds: float, kind: ClipKind = ClipKind.BULLETIN,
         **kw: Any) -> Clip:
    return Clip(clip_id, language, kind, clip_id, Path(f"{clip_id}.{language}.ogg"), seconds,
                "0" * 64, **kw)


def commune(code: str = "05440", languages: tuple[str, ...] = ("vi", "tyz", "ium"),
            station: str | None = "linh-thong") -> Area:
    return Area(code, f"Xã {code}", AreaKind.COMMUNE, "167", "thai-nguyen", languages,
                Station(station, station) if station else None)


def small_library() -> Library:
    return Library(Path("/lib"), (
        clip("chime", "zxx", 1.0, ClipKind.CHIME),
        clip("ban-tin", "vi", 10.0), clip("ban-tin", "tyz", 8.0), clip("ban-tin", "ium", 9.0),
        clip("gian-cach", "vi", 5.0), clip("gian-cach", "nut", 5.0),
        clip("khan", "vi", 6.0, ClipKind.NOTICE),
    ))
