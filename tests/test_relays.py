"""Relays that air: a real Icecast stream through mpv, fallbacks, recorded bulletins,
and every level of both sample configs published with nothing dropped."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from broadcaster.audio.library import load_library
from broadcaster.audio.publish import Publisher, prepare_library, publish
from broadcaster.audio.settings import library_dir
from broadcaster.audio.tokens import Tokens
from broadcaster.cli import main
from broadcaster.config import load_settings
from broadcaster.levels import LevelChange
from broadcaster.occurrence import Relay
from broadcaster.planner import plan
from broadcaster.schedule_files import load_programmes
from broadcaster.store.db import make_engine
from broadcaster.store.published import read_day
from tests.audio_fixtures import (
    REPO,
    TZ,
    mpv_decoded_seconds,
    occ,
    publish_plan,
    seed_store,
)
from tests.conftest import STORAGE_AGNOSTIC, free_port, write_config

DAY = date(2021, 9, 10)


# --- a real Icecast server, fed by ffmpeg -----------------------------------------------

ICECAST_XML = """<icecast>
  <limits><clients>20</clients><sources>4</sources><source-timeout>10</source-timeout>
    <burst-size>0</burst-size></limits>
  <authentication><source-password>{password}</source-password>
    <admin-user>admin</admin-user><admin-password>{password}</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <paths><logdir>{logs}</logdir><webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot></paths>
  <logging><accesslog>-</accesslog><errorlog>-</errorlog><loglevel>2</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>
"""


@pytest.fixture
def icecast(tmp_path: Path) -> Iterator[str]:
    """Debian's icecast2 on a free port with a config of its own; yields its base URL."""
    if shutil.which("icecast2") is None:
        pytest.fail("icecast2 is not installed: scripts/setup --dev installs it")
    port = free_port()
    logs = tmp_path  # logs go to stderr; icecast only wants the folder to exist
    owner = (
        "<changeowner><user>nobody</user><group>nogroup</group></changeowner>"
        if os.geteuid() == 0
        else ""
    )
    conf = tmp_path / "icecast.xml"
    conf.write_text(
        ICECAST_XML.format(port=port, logs=logs, password="hackme", owner=owner), encoding="utf-8"
    )
    proc = subprocess.Popen(
        ["icecast2", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _await(
            lambda: httpx.get(f"{base}/status-json.xsl", timeout=1).status_code == 200,
            proc,
            "icecast2",
        )
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def feed(base: str, mount: str, seconds: float, frequency: int) -> subprocess.Popen[bytes]:
    """ffmpeg sends `seconds` of a sine as MP3 at real time to the mount, then stops."""
    target = base.replace("http://", "icecast://source:hackme@") + mount
    proc = subprocess.Popen(
        [
            "ffmpeg",
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={frequency}:duration={seconds}:sample_rate=44100",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
            "-content_type",
            "audio/mpeg",
            "-f",
            "mp3",
            target,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _await(lambda: mount in httpx.get(f"{base}/status-json.xsl", timeout=1).text, proc, "ffmpeg")
    return proc


def _await(ready, proc: subprocess.Popen[bytes], name: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise AssertionError(f"{name} exited {proc.returncode}: {err}")
        time.sleep(0.1)
    raise AssertionError(f"{name} not ready within {seconds} s")


def _dominant_frequency(wav: Path) -> float:
    """Count zero crossings of the decoded audio (sox writes raw samples we can read)."""
    raw = subprocess.run(
        ["sox", str(wav), "-t", "s16", "-c", "1", "-r", "8000", "-"],
        capture_output=True,
        check=True,
    ).stdout
    samples = [int.from_bytes(raw[i : i + 2], "little", signed=True) for i in range(0, len(raw), 2)]
    crossings = sum(1 for a, b in zip(samples, samples[1:], strict=False) if a < 0 <= b)
    return crossings / (len(samples) / 8000)


@STORAGE_AGNOSTIC
def test_mpv_airs_a_relay_from_a_real_icecast_stream_then_the_rest_of_the_slot(
    served, icecast: str, tmp_path: Path
):
    config, base = served
    now = datetime.now(UTC)
    stream = Relay("district", f"{icecast}/district.mp3", "tiep-song-vov")
    at = now + timedelta(minutes=5)
    publish_plan(
        config,
        [
            occ("district-news", "relay", "05440", at, "priority", stream, timedelta(seconds=6)),
            occ("own-news", "loudspeaker", "05440", at, "normal", ["gian-cach"]),
        ],
        now,
    )
    listed = CliRunner().invoke(main, ["--config", str(config), "stations", "--format", "json"])
    row = next(r for r in json.loads(listed.output) if r["station"] == "linh-thong")
    manifest = httpx.get(row["manifest_url"]).raise_for_status().json()
    assert [i["kind"] for i in manifest["items"]] == ["chime", "relay", "clip"]
    m3u = httpx.get(row["playlist_url"]).raise_for_status().text.splitlines()
    assert m3u[3:5] == ["#EXTINF:6,district", f"{icecast}/district.mp3"]

    source = feed(icecast, "/district.mp3", seconds=8, frequency=440)
    try:
        decoded = mpv_decoded_seconds(row["playlist_url"], tmp_path / "pcm")
    finally:
        source.wait(timeout=30)
    chime, relayed, clip = decoded
    assert abs(chime - manifest["items"][0]["duration"]) <= 0.2
    # A plain player relays until the stream ends (the station agent stops it on time):
    # here ffmpeg's 8 s, less what went by before mpv reached the item.
    assert 3 <= relayed <= 9, decoded
    assert abs(clip - manifest["items"][2]["duration"]) <= 0.2
    wavs = sorted((tmp_path / "pcm").glob("*.wav"))
    assert 420 <= _dominant_frequency(wavs[1]) <= 460  # the stream's sine, not silence


@STORAGE_AGNOSTIC
def test_relay_manifest_points_at_a_fallback_the_station_api_serves(served, tmp_path: Path):
    config, base = served
    now = datetime.now(UTC)
    stream = Relay("district", "http://127.0.0.1:9/gone.mp3", "tiep-song-vov")
    publish_plan(
        config,
        [
            occ(
                "district-news",
                "relay",
                "05440",
                now + timedelta(minutes=5),
                "priority",
                stream,
                timedelta(minutes=15),
            )
        ],
        now,
    )
    listed = CliRunner().invoke(main, ["--config", str(config), "stations", "--format", "json"])
    row = next(r for r in json.loads(listed.output) if r["station"] == "linh-thong")
    relay = httpx.get(row["manifest_url"]).raise_for_status().json()["items"][1]
    assert (relay["url"], relay["duration"]) == ("http://127.0.0.1:9/gone.mp3", 900.0)
    fallback = relay["fallback"]
    decoded = mpv_decoded_seconds(fallback["url"], tmp_path / "pcm", playlist=False)
    assert decoded == [pytest.approx(fallback["duration"], abs=0.2)]
    body = httpx.get(fallback["url"]).raise_for_status().content
    assert hashlib.sha256(body).hexdigest() == fallback["sha256"]


# --- recorded bulletins -------------------------------------------------------------------


def test_a_recorded_bulletin_airs_in_place_of_that_relay_only(
    tmp_path: Path, db_url: str, engine, normalised_store: Path, people
):
    library = tmp_path / "audio"
    shutil.copytree(REPO / "audio", library)
    config = write_config(tmp_path, db_url)
    with config.open("a", encoding="utf-8") as out:
        out.write(
            f'\n[planner]\nschedules = "{REPO / "schedules"}"\n'
            f'\n[audio]\nlibrary_dir = "{library}"\nrender_slots = false\n'
        )
    seed_store(normalised_store, tmp_path / "data")
    recording = tmp_path / "ban-tin-sang.wav"
    subprocess.run(
        ["sox", "-n", "-r", "22050", "-c", "1", str(recording), "synth", "7", "sine", "300"],
        check=True,
    )
    run = CliRunner().invoke(
        main,
        [
            "--config",
            str(config),
            "audio",
            "import",
            str(recording),
            "--for",
            "district-bulletin",
            "--at",
            DAY.isoformat(),
            "06:00",
        ],
    )
    assert run.exit_code == 0, run.output
    assert "district-bulletin-20210910-0600 [vi] recording" in run.output
    assert "`broadcaster audio approve 1`" in run.output  # it airs on a second account's word
    approved = CliRunner().invoke(
        main, ["--config", str(config), "audio", "approve", "1", *people.as_approver]
    )
    assert approved.exit_code == 0, approved.output
    assert f"approved by {people.approver.name}" in approved.output
    bad = CliRunner().invoke(
        main,
        [
            "--config",
            str(config),
            "audio",
            "import",
            str(recording),
            "--for",
            "district-bulletin",
            "--at",
            DAY.isoformat(),
            "06:05",
        ],
    )
    assert bad.exit_code == 2 and "airs at no level at 06:05" in bad.output

    settings = load_settings(config)
    start = datetime.combine(DAY, clock(0), tzinfo=TZ)
    occurrences = plan(
        load_programmes(settings), [], settings.registry(), start, start + timedelta(days=2), TZ
    )
    publish_plan(config, occurrences, start.astimezone(UTC))
    engine = make_engine(settings.storage_url)
    day = json.loads(read_day(engine, "linh-thong", DAY) or b"null")
    items = {m["slot"]: [i for i in m["items"] if i["kind"] != "chime"] for m in day["slots"]}
    assert [(i["kind"], i["clip"], i.get("recorded")) for i in items["0600"]] == [
        ("clip", "district-bulletin-20210910-0600", True)
    ]
    assert [i["kind"] for i in items["1100"]] == ["relay"]
    assert [i["kind"] for i in items["1700"]] == ["relay"]
    tomorrow = json.loads(read_day(engine, "linh-thong", DAY + timedelta(days=1)) or b"null")
    engine.dispose()
    assert [i["kind"] for m in tomorrow["slots"] if m["slot"] == "0600" for i in m["items"]] == [
        "chime",
        "relay",
    ]


# --- every level of both sample configs airs everything -------------------------------


@pytest.mark.parametrize("config", ["config.toml", "examples/gia-lai.toml"])
def test_every_level_of_the_sample_configs_passes_the_check_and_publishes_without_drops(
    config: str, tmp_path: Path, normalised_store: Path, engine: Engine
):
    settings = load_settings(REPO / config)
    run = CliRunner().invoke(main, ["--config", str(REPO / config), "schedule", "check"])
    assert run.exit_code == 0, run.output
    assert run.output.startswith("ok:")
    programmes = load_programmes(settings)
    library = load_library(library_dir(settings.audio, settings.path))
    seed_store(normalised_store, tmp_path)  # into tmp_path/publish/audio
    audio = settings.audio.model_copy(update={"render_slots": False})
    start = datetime.combine(DAY, clock(0), tzinfo=TZ).astimezone(UTC)
    registry = settings.registry()
    pub = Publisher(tmp_path / "publish", "http://x", TZ, Tokens(b"k"), audio, engine)
    aired, rendered = prepare_library(library, pub)  # the durations stations will air
    levels = 0
    for ladder in settings.ladder_objects().values():
        tops = [a.code for a in registry.all() if a.parent is None and a.ladder == ladder.name]
        for level in ladder.names:
            changes = [
                LevelChange(code, level, start - timedelta(days=1), "t", "t") for code in tops
            ]
            occurrences = plan(programmes, changes, registry, start, start + timedelta(days=3), TZ)
            report = publish(registry, occurrences, aired, now=start, pub=pub, rendered=rendered)
            assert report.dropped == [], (level, report.dropped[:3])
            levels += 1
    assert levels == {"config.toml": 7, "examples/gia-lai.toml": 5}[config]
