"""Run station agents as real processes, with mpv writing each item's audio to a file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from broadcaster.audio.tokens import Tokens
from tests.audio_fixtures import MPV_SCRIPT, SECRET
from tests.conftest import REPO
from tests.daemon_fixtures import HCM


def token(station: str) -> str:
    return Tokens(SECRET.encode()).for_station(station)


def loudspeaker_schedule(
    programme: str, areas: list[str], times: list[datetime], clips: list[str]
) -> str:
    """A loudspeaker programme airing `clips` at local `times` (seconds included)."""
    clock = ", ".join(f'"{t.astimezone(HCM).strftime("%H:%M:%S")}"' for t in times)
    return textwrap.dedent(f"""\
        [[programme]]
        id = "{programme}"
        channel = "loudspeaker"
        priority = "normal"
        areas = {json.dumps(areas)}
        duration = "5m"
        content = {{ clips = {json.dumps(clips)} }}
        [programme.levels."5.1"]
        times = [{clock}]
        """)


@dataclass
class AgentProcess:
    """`broadcaster station run` as a real process, its audio decoded to `pcm/NNN.wav`."""

    station: str
    base: str
    folder: Path
    heartbeat: float = 1.0
    process: subprocess.Popen[bytes] | None = None

    @property
    def pcm(self) -> Path:
        return self.folder / "pcm"

    @property
    def cache(self) -> Path:
        return self.folder / "cache"

    def start(self) -> AgentProcess:
        self.pcm.mkdir(parents=True, exist_ok=True)
        self.log = (self.folder / "agent.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "broadcaster",
                "station",
                "run",
                "--centre",
                self.base,
                "--station",
                self.station,
                "--token",
                token(self.station),
                "--cache",
                str(self.cache),
                "--heartbeat",
                str(self.heartbeat),
                "--refresh",
                "2",
                # ao=pcm writes as fast as mpv decodes; arealtime paces it like a sound card
                "--mpv-option",
                "ao=pcm",
                "--mpv-option",
                "af=lavfi=[arealtime]",
                "--mpv-option",
                f"script={MPV_SCRIPT}",
                "--mpv-option",
                f"script-opts=pcmdir={self.pcm}",
            ],
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return self

    def wavs(self) -> list[Path]:
        return sorted(self.pcm.glob("*.wav"))

    def queued_reports(self) -> list[dict]:
        return [json.loads(p.read_bytes()) for p in sorted((self.cache / "reports").glob("*.json"))]

    def output(self) -> str:
        return (self.folder / "agent.log").read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if hasattr(self, "log"):
            self.log.close()


def seconds(wav: Path) -> float:
    """A decoded item's length (sox reads mpv's WAVE_FORMAT_EXTENSIBLE header)."""
    out = subprocess.run(["soxi", "-D", str(wav)], capture_output=True, text=True, check=True)
    return float(out.stdout)


def day_document(base: str, station: str, day: str) -> dict:
    response = httpx.get(
        f"{base}/stations/{station}/{day}.json", params={"token": token(station)}, timeout=10
    )
    return response.json() if response.status_code == 200 else {}


ICECAST_XML = """<icecast>
  <limits><clients>10</clients><sources>2</sources><source-timeout>5</source-timeout></limits>
  <authentication><source-password>{password}</source-password>
    <admin-user>admin</admin-user><admin-password>{password}</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>{folder}</logdir>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging><errorlog>error.log</errorlog><loglevel>2</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>
"""


@dataclass
class Icecast:
    """A real Icecast server (Debian's icecast2) fed a tone by ffmpeg, on a free port.

    Its folder is outside pytest's private tmp tree: started as root, icecast
    drops to `nobody`, which must still reach its log folder.
    """

    port: int
    mount: str = "district.mp3"
    password: str = "relay-test"
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bcast-icecast-")))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.mount}"

    def start(self) -> Icecast:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o777)  # icecast drops to nobody when started as root
        owner = (
            "<changeowner><user>nobody</user><group>nogroup</group></changeowner>"
            if os.getuid() == 0
            else ""
        )
        config = self.folder / "icecast.xml"
        config.write_text(
            ICECAST_XML.format(
                password=self.password, port=self.port, folder=self.folder, owner=owner
            )
        )
        config.chmod(0o644)
        self.server = subprocess.Popen(
            ["icecast2", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.feed = subprocess.Popen(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-re",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=44100",
                "-c:a",
                "libmp3lame",
                "-b:a",
                "64k",
                "-content_type",
                "audio/mpeg",
                "-f",
                "mp3",
                f"icecast://source:{self.password}@127.0.0.1:{self.port}/{self.mount}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def live(self) -> bool:
        try:
            with httpx.stream("GET", self.url, timeout=2) as response:
                return response.status_code == 200 and bool(next(response.iter_bytes(), b""))
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no icecast log)"

    def stop(self) -> None:
        for proc in (getattr(self, "feed", None), getattr(self, "server", None)):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
