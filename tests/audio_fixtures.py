"""Shared values for the audio tests: a small library, occurrences, communes."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from broadcaster.areas import Area, AreaKind, Station
from broadcaster.audio.library import Clip, ClipKind, Library, load_library
from broadcaster.audio.publish import Publisher, prepare_library
from broadcaster.audio.settings import AudioSettings
from broadcaster.audio.tokens import Tokens
from broadcaster.occurrence import Channel, Clips, Content, Occurrence, Priority, Relay
from broadcaster.store.db import make_engine, upgrade
from tests.conftest import free_port

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
REPO = Path(__file__).resolve().parent.parent


VOV = Relay("vov", "http://radio.example/vov1", "tiep-song-vov")


def occ(
    programme: str,
    channel: str,
    area: str,
    at: datetime,
    priority: str = "normal",
    content: Content | Sequence[str] = (),
    duration: timedelta | None = None,
) -> Occurrence:
    """An occurrence as the planner makes them; a list of clip ids stands for Clips."""
    typed = content if isinstance(content, Clips | Relay) else Clips(tuple(content))
    return Occurrence(programme, Channel(channel), area, at, Priority(priority), typed, duration)


def local(hhmm: str, day: int = 1) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(2021, 9, day, hour, minute, tzinfo=TZ)


def clip(
    clip_id: str, language: str, seconds: float, kind: ClipKind = ClipKind.BULLETIN, **kw: Any
) -> Clip:
    return Clip(
        clip_id, language, kind, clip_id, Path(f"{clip_id}.{language}.ogg"), seconds, "0" * 64, **kw
    )


def commune(
    code: str = "05440",
    languages: tuple[str, ...] = ("vi", "tyz", "ium"),
    station: str | None = "linh-thong",
) -> Area:
    return Area(
        code,
        f"Xã {code}",
        AreaKind.COMMUNE,
        "167",
        "thai-nguyen",
        languages,
        Station(station, station) if station else None,
    )


def small_library() -> Library:
    return Library(
        Path("/lib"),
        (
            clip("chime", "zxx", 1.0, ClipKind.CHIME),
            clip("ban-tin", "vi", 10.0),
            clip("ban-tin", "tyz", 8.0),
            clip("ban-tin", "ium", 9.0),
            clip("gian-cach", "vi", 5.0),
            clip("gian-cach", "nut", 5.0),
            clip("khan", "vi", 6.0, ClipKind.NOTICE),
        ),
    )


# --- Real-peer helpers: a config with the sample library, a served daemon ------------


SECRET = "test-secret-not-for-production"


@pytest.fixture(scope="session")
def normalised_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample library normalised once per test run (real ffmpeg, ~10 s of CPU).

    xdist workers share the run's temp folder: the first to take the lock normalises
    there, and each worker copies the result into its own store, which its tests may
    add renders to."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    once = shared / "normalised-library"
    with (shared / "normalised-library.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (once / "done").exists():
            once.mkdir(exist_ok=True)
            engine = make_engine(f"sqlite:///{once / 'normalised.db'}")
            upgrade(engine)
            pub = Publisher(once, "http://x", TZ, Tokens(b"s"), AudioSettings(), engine)
            prepare_library(load_library(REPO / "audio"), pub)
            engine.dispose()
            (once / "done").touch()
    root = tmp_path_factory.mktemp("publish")
    shutil.copytree(once / "audio", root / "audio")
    return root / "audio"


def audio_config(config: Path, port: int, **audio: Any) -> Path:
    """Point a copied sample config at the repo's library, a fixed secret and `port`."""
    settings = {"library_dir": str(REPO / "audio"), "token_secret": SECRET, **audio}
    lines = [
        f"{k} = {v!r}".replace("'", '"')
        if isinstance(v, str)
        else f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
        for k, v in settings.items()
    ]
    body = config.read_text(encoding="utf-8")
    body = re.sub(r'(?m)^bind = "127\.0\.0\.1:\d+"$', f'bind = "127.0.0.1:{port}"', body)
    body = re.sub(
        r'(?m)^public_url = "http://127\.0\.0\.1:\d+"$',
        f'public_url = "http://127.0.0.1:{port}"',
        body,
    )
    config.write_text(body + "\n[audio]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return config


def seed_store(store: Path, data_dir: Path) -> None:
    shutil.copytree(store, data_dir / "publish" / "audio", dirs_exist_ok=True)


@pytest.fixture
def served(tmp_path: Path, db_url: str, normalised_store: Path) -> Iterator[tuple[Path, str]]:
    """`broadcaster serve` as a real process on a free port; yields (config, base URL)."""
    from tests.conftest import write_config

    port = free_port()
    config = audio_config(write_config(tmp_path, db_url), port, render_slots=False)
    seed_store(normalised_store, tmp_path / "data")
    env = {**os.environ, "BROADCASTER_CONFIG": str(config)}
    cmd = [sys.executable, "-m", "broadcaster"]
    subprocess.run([*cmd, "db", "upgrade"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [*cmd, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _await_listening(base, proc)
        yield config, base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _await_listening(base: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll /healthz until the server answers; fail with its output if it exits first."""
    for _ in range(200):
        try:
            httpx.get(f"{base}/healthz", timeout=0.5)
            return
        except httpx.TransportError:
            pass
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        output = proc.stdout.read().decode() if proc.stdout else ""
        raise AssertionError(f"broadcaster serve exited {proc.returncode}: {output}")
    raise AssertionError("broadcaster serve did not answer within 10 s")


def publish_plan(config: Path, occurrences: list[Any], now: datetime) -> Any:
    """Publish `occurrences` with the config's settings, as the daemon does on a plan change."""
    from broadcaster.audio.notice import republish
    from broadcaster.audio.publish import publisher
    from broadcaster.audio.sharing import node_library
    from broadcaster.config import load_settings
    from broadcaster.store.db import make_engine

    settings = load_settings(config)
    engine = make_engine(settings.storage_url)
    try:
        return republish(
            engine,
            settings.registry(),
            publisher(settings, engine),
            node_library(settings, engine),
            now=now,
            occurrences=occurrences,
        )
    finally:
        engine.dispose()


def day_plan(start: datetime) -> list[Occurrence]:
    """A district bulletin now and in an hour, a relay at noon, a van round; for 167."""
    return [
        occ("ban-tin-huyen", "loudspeaker", "167", start, "normal", ["ban-tin-5k", "tiem-vac-xin"]),
        occ("gian-cach", "loudspeaker", "167", start, "priority", ["gian-cach"]),
        occ(
            "ban-tin-huyen",
            "loudspeaker",
            "167",
            start + timedelta(hours=1),
            "normal",
            ["ban-tin-5k"],
        ),
        occ(
            "vov",
            "relay",
            "167",
            start + timedelta(hours=2),
            "normal",
            VOV,
            timedelta(minutes=30),
        ),
        occ(
            "xe-loa",
            "van",
            "167",
            start + timedelta(hours=3),
            "normal",
            ["gian-cach"],
            timedelta(minutes=5),
        ),
    ]


MPV_SCRIPT = REPO / "tests" / "data" / "mpv_pcm_per_item.lua"


def mpv_decoded_seconds(playlist_url: str, out: Path, playlist: bool = True) -> list[float]:
    """Have mpv fetch a playlist (or one file) over HTTP and decode every item to its own
    PCM file; return each item's decoded length (sox reads mpv's WAVE_FORMAT_EXTENSIBLE
    header).

    mpv runs in `out`'s parent with an explicit first output file, so nothing it
    writes before the script names a file lands in the working tree."""
    out.mkdir(parents=True, exist_ok=True)
    played = subprocess.run(
        [
            "mpv",
            "--no-config",
            "--no-video",
            "--ao=pcm",
            f"--ao-pcm-file={out.parent / 'before-first-item.wav'}",
            "--gapless-audio=no",
            "--really-quiet",
            f"--script={MPV_SCRIPT}",
            f"--script-opts=pcmdir={out}",
            playlist_url,
        ],
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    reasons = [line.split()[2] for line in played.stdout.splitlines() if line.startswith("ITEM")]
    items = reasons[1:] if playlist else reasons
    assert reasons and (not playlist or reasons[0] == "redirect"), played.stdout
    assert set(items) == {"eof"}, played.stdout
    return [
        float(
            subprocess.run(
                ["soxi", "-D", str(p)], capture_output=True, text=True, check=True
            ).stdout
        )
        for p in sorted(out.glob("*.wav"))
    ]
