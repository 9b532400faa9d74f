"""Benchmark publishing: a day of playlists for 10,000 communes, and a 2 h van loop.

Run by hand: `.venv/bin/python bench/publish.py [--communes 10000] [--db URL]`. Prints
figures; asserts nothing. Normalising the sample library happens first (cached by hash).
Days are published into a fresh SQLite database in a temporary folder, or into `--db`
(an empty PostgreSQL schema, say), where every node serves them from.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from broadcaster.areas import Area, AreaKind, AreaRegistry, Station
from broadcaster.audio.library import load_library, write_atomic
from broadcaster.audio.publish import Publisher, prepare_library, publish
from broadcaster.audio.render import render_sequence
from broadcaster.audio.settings import AudioSettings
from broadcaster.audio.tokens import Tokens
from broadcaster.occurrence import Channel, Clips, Occurrence, Priority, Relay
from broadcaster.store.db import make_engine, upgrade

REPO = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
LANGS = [("vi", "tyz"), ("vi", "tyz", "ium"), ("vi", "tyz", "nut"), ("vi",)]


def registry(communes: int) -> AreaRegistry:
    areas = {"19": Area("19", "Tỉnh", AreaKind.PROVINCE, None, "l")}
    for i in range(communes):
        district = f"d{i // 100:03d}"
        areas.setdefault(district, Area(district, district, AreaKind.DISTRICT, "19", "l"))
        code = f"c{i:05d}"
        areas[code] = Area(
            code,
            code,
            AreaKind.COMMUNE,
            district,
            "l",
            LANGS[i % len(LANGS)],
            Station(f"s{i:05d}", code),
        )
    return AreaRegistry(areas)


def plan(reg: AreaRegistry, day: datetime) -> list[Occurrence]:
    """Per commune: bulletins at 06, 11, 17, a priority item at 11, a relay at 12."""
    vov = Relay("vov", "http://vov.example/1", "tiep-song-vov")
    occ: list[Occurrence] = []
    for area in reg.all():
        if area.kind is AreaKind.COMMUNE:
            for hour in (6, 11, 17):
                occ.append(
                    Occurrence(
                        "ban-tin",
                        Channel.LOUDSPEAKER,
                        area.code,
                        day + timedelta(hours=hour),
                        Priority.NORMAL,
                        Clips(("ban-tin-5k", "tiem-vac-xin")),
                    )
                )
            occ.append(
                Occurrence(
                    "gian-cach",
                    Channel.LOUDSPEAKER,
                    area.code,
                    day + timedelta(hours=11),
                    Priority.PRIORITY,
                    Clips(("gian-cach",)),
                )
            )
            occ.append(
                Occurrence(
                    "vov",
                    Channel.RELAY,
                    area.code,
                    day + timedelta(hours=12),
                    Priority.NORMAL,
                    vov,
                    timedelta(minutes=30),
                )
            )
        elif area.kind is AreaKind.DISTRICT:
            occ.append(
                Occurrence(
                    "xe-loa",
                    Channel.VAN,
                    area.code,
                    day + timedelta(hours=8),
                    Priority.NORMAL,
                    Clips(("gian-cach", "ban-tin-5k")),
                    timedelta(hours=2),
                )
            )
    return occ


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--communes", type=int, default=10_000)
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    engine = make_engine(args.db or f"sqlite:///{work / 'bench.db'}")
    upgrade(engine)
    try:
        settings = AudioSettings(days_ahead=1, render_slots=False)
        pub = Publisher(
            work / "publish", "http://127.0.0.1:8080", TZ, Tokens(b"bench"), settings, engine
        )
        library, rendered = prepare_library(load_library(REPO / "audio"), pub)
        van_loop(pub, library, rendered)
        reg = registry(args.communes)
        day = datetime(2021, 9, 1, tzinfo=TZ)
        occurrences = plan(reg, day)
        now = day + timedelta(hours=5)
        file_floor(work, len(reg.all()) - 1)
        timed(
            "first publish, 1 day",
            lambda: publish(reg, occurrences, library, now=now, pub=pub, rendered=rendered),
        )
        timed(
            "republish, nothing changed",
            lambda: publish(reg, occurrences, library, now=now, pub=pub, rendered=rendered),
        )
        changed = [
            replace(o, at=o.at + timedelta(minutes=30)) if o.at.hour == 17 else o
            for o in occurrences
        ]
        timed(
            "republish after a schedule change",
            lambda: publish(reg, changed, library, now=now, pub=pub, rendered=rendered),
        )
        mixing = replace(pub, audio=settings.model_copy(update={"render_slots": True}))
        timed(
            "republish with one rendered file per slot",
            lambda: publish(reg, changed, library, now=now, pub=mixing, rendered=rendered),
        )
    finally:
        engine.dispose()
        shutil.rmtree(work)


def van_loop(pub: Publisher, library, rendered) -> None:  # noqa: ANN001 - bench glue
    """Render a 2-hour van loop through ffmpeg's concat and report peak memory."""
    loop = [
        rendered[(c.id, c.language)]
        for c in library.clips
        if c.id in ("chime", "gian-cach", "ban-tin-5k")
    ]
    length = sum(r.duration for r in loop) + 0.5 * len(loop)
    parts = loop * int(7200 // length + 1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    out = render_sequence(parts, 0.5, pub.target, pub.store, pub.audio.mix_max_seconds)
    seconds = time.perf_counter() - start
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"van loop: {out.duration / 3600:.2f} h of audio ({len(parts)} items) rendered in "
        f"{seconds:.1f} s; peak RSS python {own:.0f} MB (was {before:.0f} MB), "
        f"largest ffmpeg child {child:.0f} MB"
    )


def timed(label: str, action) -> None:  # noqa: ANN001 - bench glue
    start, cpu = time.perf_counter(), os.times()
    report = action()
    seconds, user, system = _since(start, cpu)
    print(
        f"{label}: {seconds:.2f} s wall, {user + system:.2f} s CPU "
        f"({user:.2f} user + {system:.2f} sys) — {report.stations} stations, "
        f"{report.slots} slots, "
        f"{report.written} days written, {report.unchanged} unchanged, "
        f"{report.removed} removed"
    )


def file_floor(work: Path, files: int) -> None:
    """Time creating as many small files through write_atomic, nothing else: the kernel's
    share of a first publish, which on a VM varies several-fold from run to run."""
    folder = work / "floor"
    data = b"x" * 4096
    start, cpu = time.perf_counter(), os.times()
    for i in range(files):
        write_atomic(folder / f"s{i:05d}.json", data)
    seconds, user, system = _since(start, cpu)
    print(
        f"floor, {files} files of 4 KiB through write_atomic alone: {seconds:.2f} s wall, "
        f"{user + system:.2f} s CPU ({user:.2f} user + {system:.2f} sys)"
    )


def _since(start: float, cpu: os.times_result) -> tuple[float, float, float]:
    now = os.times()
    return time.perf_counter() - start, now.user - cpu.user, now.system - cpu.system


if __name__ == "__main__":
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    main()
