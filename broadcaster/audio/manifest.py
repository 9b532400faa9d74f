"""Render a station's published day as JSON, once per distinct shape of day.

At 10,000 communes most stations air the same slots: their day documents
differ only in the station code, the commune code and the token inside each
URL. Building dictionaries, ISO times and JSON 150,000 times over cost most
of a publication, so a day is rendered once with placeholders and each
station's bytes are the template's pieces joined with its own values.

The placeholders hold a random part drawn per process, so no clip title or
relay source can be taken for one, and each value is JSON-escaped as
`json.dumps` would have escaped it in place: the bytes are exactly those of
rendering every station on its own.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from broadcaster.audio.library import Clip, ClipKind
from broadcaster.audio.playlist import Dropped, Entry, EntryKind, Slot, VanRound
from broadcaster.audio.render import Rendered

_NONCE = secrets.token_hex(8)
STATION = f"\ufdd0S{_NONCE}"
COMMUNE = f"\ufdd0C{_NONCE}"
TOKEN = f"\ufdd0T{_NONCE}"
_PLACEHOLDER = re.compile(f"({'|'.join(map(re.escape, (STATION, COMMUNE, TOKEN)))})")

Mixer = Callable[[list[Rendered]], "Rendered | None"]


@dataclass(frozen=True)
class DayTemplate:
    """A day document with the station, commune and token left as placeholders."""

    pieces: tuple[str, ...]
    slots: tuple[tuple[str, tuple[Dropped, ...]], ...]

    def fill(self, station: str, commune: str, token: str) -> bytes:
        """Return one station's day document, as `json.dumps` would have written it."""
        values = {STATION: _escaped(station), COMMUNE: _escaped(commune), TOKEN: _escaped(token)}
        parts = list(self.pieces)
        parts[1::2] = [values[p] for p in self.pieces[1::2]]
        return "".join(parts).encode("utf-8")


@dataclass(frozen=True)
class Renderer:
    """What a manifest needs from the publisher: URLs, the zone, the normalised clips."""

    public_url: str
    tz: tzinfo
    rendered: dict[tuple[str, str], Rendered]
    mix: Mixer

    def commune_day(self, day: date, slots: Sequence[Slot]) -> DayTemplate:
        """Render a commune station's day, its station and commune left open."""
        manifests = [self._slot(day, s) for s in slots]
        return self._template(day, manifests, [(s.id, s.dropped) for s in slots])

    def van_day(
        self, district: str, day: date, rounds: Sequence[VanRound], gap: float
    ) -> DayTemplate:
        """Render a district van's day, its station left open."""
        manifests = [self._round(district, day, r, gap) for r in rounds]
        return self._template(day, manifests, [(r.id, r.dropped) for r in rounds])

    def _template(
        self,
        day: date,
        manifests: list[dict[str, Any]],
        slots: list[tuple[str, tuple[Dropped, ...]]],
    ) -> DayTemplate:
        text = _json_text({"station": STATION, "date": day.isoformat(), "slots": manifests})
        return DayTemplate(tuple(_PLACEHOLDER.split(text)), tuple(slots))

    def _url(self, path: str) -> str:
        return f"{self.public_url}/stations/{STATION}/{path}?token={TOKEN}"

    def _slot(self, day: date, slot: Slot) -> dict[str, Any]:
        clips = [self.rendered[(e.clip.id, e.clip.language)] for e in slot.entries if e.clip]
        live = any(e.kind is EntryKind.RELAY for e in slot.entries)
        mix = None if live else self.mix(clips)  # one file cannot hold a live stream
        return {
            "station": STATION,
            "commune": COMMUNE,
            "date": day.isoformat(),
            "slot": slot.id,
            "start": _iso(slot.start, self.tz),
            "end": _iso(slot.end, self.tz) if slot.end else None,
            "duration": round(slot.duration, 3),
            "playlist_url": self._url(f"{day.isoformat()}/{slot.id}.m3u"),
            "audio_url": self._url(f"audio/{mix.name}") if mix else None,
            "audio_duration": round(mix.duration, 3) if mix else None,
            "items": [self._item(slot.start, e) for e in slot.entries],
            "dropped": [_dropped(d) for d in slot.dropped],
        }

    def _round(self, district: str, day: date, rnd: VanRound, gap: float) -> dict[str, Any]:
        length = rnd.loop_duration + gap
        loop = [self.rendered[(e.clip.id, e.clip.language)] for e in rnd.loop if e.clip]
        mix = self.mix(loop * rnd.repeat)
        return {
            "station": STATION,
            "district": district,
            "date": day.isoformat(),
            "slot": rnd.id,
            "start": _iso(rnd.start, self.tz),
            "end": None,
            "duration": round(length * rnd.repeat - gap, 3) if rnd.repeat else 0.0,
            "repeat": rnd.repeat,
            "route": list(rnd.route),
            "playlist_url": self._url(f"{day.isoformat()}/{rnd.id}.m3u"),
            "audio_url": self._url(f"audio/{mix.name}") if mix else None,
            "audio_duration": round(mix.duration, 3) if mix else None,
            "loop_duration": round(rnd.loop_duration, 3),
            "items": [self._item(rnd.start, e) for e in rnd.loop],
            "dropped": [_dropped(d) for d in rnd.dropped],
        }

    def _item(self, start: datetime, entry: Entry) -> dict[str, Any]:
        item: dict[str, Any] = {
            "kind": entry.kind.value,
            "programme": entry.programme,
            "priority": entry.priority.value,
            "offset": round(entry.offset, 3),
            "duration": round(entry.duration, 3),
            "air_time": _iso(start + timedelta(seconds=entry.offset), self.tz),
        }
        if entry.relay is not None:
            fallback = entry.fallback
            item |= {
                "relay": entry.relay.name,
                "title": entry.relay.name,
                "url": entry.relay.url,
                "fallback": self._clip(fallback) | {"duration": round(fallback.duration, 3)}
                if fallback
                else None,
            }
        elif entry.clip is not None:
            item |= self._clip(entry.clip)
            if entry.clip.kind is ClipKind.RECORDING:
                item["recorded"] = True
        return item

    def _clip(self, clip: Clip) -> dict[str, Any]:
        done = self.rendered[(clip.id, clip.language)]
        return {
            "clip": clip.id,
            "language": clip.language,
            "title": clip.title,
            "sha256": done.sha256,
            "url": self._url(f"audio/{done.name}"),
        }


def _dropped(d: Dropped) -> dict[str, Any]:
    return {**asdict(d), "priority": d.priority.value}


def _json_text(obj: Any) -> str:
    """Compact JSON: the C encoder, which indent= would turn off, and smaller polls."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_skip)


def _escaped(value: str) -> str:
    """Escape a value as it reads inside a JSON string written by `_json_text`."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _skip(value: Any) -> Any:
    raise TypeError(f"not serialisable in a manifest: {value!r}")


def _iso(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="seconds")
