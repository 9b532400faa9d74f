"""Emergency notices: record one, turn text into speech, and republish at once.

A notice becomes an emergency occurrence in every commune under its areas,
at the moment it goes live; the playlist builder puts it at the head of the
slot airing then (or opens a slot for it). Only the affected stations are
republished, from the occurrences last published (kept in the database, so
any node can), so the
notice reaches them in seconds without waiting for the planner, and a later
full publication by the daemon keeps it because notices come from the
database every time.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import Engine

from broadcaster.areas import AreaRegistry
from broadcaster.audio.library import Clip, ClipKind, Library, file_sha256, probe_duration
from broadcaster.audio.publish import (
    Publisher,
    PublishReport,
    load_plan,
    publish,
    save_plan,
)
from broadcaster.occurrence import Channel, Clips, Occurrence, Priority
from broadcaster.store.audio import Notice, live_notices

log = structlog.get_logger(__name__)

VOICE = "vi"
MAX_TEXT = 2000  # characters; a notice is a few sentences, espeak-ng's time grows with length


def notice_audio(data_dir: Path, *, audio: Path | None, text: str | None) -> Path:
    """Keep the notice's audio under data_dir/notices, named by hash; speak text with espeak-ng."""
    if (audio is None) == (text is None):
        raise ValueError("give exactly one of --audio FILE or --text TEXT")
    folder = data_dir / "notices"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        if text is not None:
            source = Path(tmp) / "speech.wav"
            speak(text, source)
        else:
            assert audio is not None
            if not audio.is_file():
                raise ValueError(f"--audio {audio}: no such file")
            source = Path(tmp) / ("upload" + audio.suffix.lower())
            shutil.copyfile(audio, source)
        probe_duration(source)
        target = folder / (file_sha256(source) + source.suffix)
        if not target.exists():
            source.replace(target)
    return target


def speak(text: str, target: Path) -> None:
    """Write text as speech to a WAV file with espeak-ng.

    The text goes in on stdin, never on the command line, so a text such as
    `-f/etc/hostname` is spoken as written rather than read as an option.
    """
    if not text.strip():
        raise ValueError("--text is empty")
    if len(text) > MAX_TEXT:
        raise ValueError(f"--text is {len(text)} characters; at most {MAX_TEXT} are spoken")
    subprocess.run(
        ["espeak-ng", "-v", VOICE, "-s", "150", "-w", str(target), "--stdin"],
        input=text.encode("utf-8"),
        check=True,
        capture_output=True,
    )


def republish(
    engine: Engine,
    registry: AreaRegistry,
    pub: Publisher,
    library: Library,
    *,
    now: datetime,
    occurrences: Sequence[Occurrence] | None = None,
    only: set[str] | None = None,
) -> PublishReport:
    """Publish the plan (given, or the one last published) with the live notices on top.

    The daemon calls this with the planner's occurrences whenever the plan
    changes; `notice` calls it with none, to reuse the last published plan.
    """
    notices = live_notices(engine, since=now - timedelta(days=1))
    plan = list(occurrences) if occurrences is not None else load_plan(pub.engine)
    extra = [occ for n in notices for occ in notice_occurrences(n, registry)]
    merged = library.with_clips(tuple(notice_clip(n) for n in notices))
    report = publish(registry, [*plan, *extra], merged, now=now, pub=pub, only=only)
    if occurrences is not None and only is None:
        save_plan(pub.engine, plan)
    return report


def affected_stations(registry: AreaRegistry, notices: Sequence[Notice]) -> set[str]:
    return {
        c.station.code
        for n in notices
        for code in n.areas
        for c in registry.communes_under(code)
        if c.station is not None
    }


def notice_clip(notice: Notice) -> Clip:
    path = Path(notice.clip_file)
    return Clip(
        f"notice-{notice.id}",
        VOICE,
        ClipKind.NOTICE,
        f"Thông báo khẩn #{notice.id}",
        path,
        notice.duration,
        notice.clip_sha256,
    )


def notice_occurrences(notice: Notice, registry: AreaRegistry) -> list[Occurrence]:
    communes = {c.code for code in notice.areas for c in registry.communes_under(code)}
    return [
        Occurrence(
            f"notice-{notice.id}",
            Channel.LOUDSPEAKER,
            code,
            notice.airs_at,
            Priority.EMERGENCY,
            Clips((f"notice-{notice.id}",)),
        )
        for code in sorted(communes)
    ]
