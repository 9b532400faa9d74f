"""Benchmark the station agent: start time, resident memory idle and playing, CPU per hour.

Run by hand: `.venv/bin/python bench/station.py [--play 60]`.
Goals (issue 11): start < 0.5 s, < 60 MB resident, < 1 % of one core while
playing, mpv excluded. A small centre in this process serves one day with a
slot of one long item; the agent is a real `broadcaster station run` process
with mpv sending its audio to a null output. Figures are printed against
`python -c pass` measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def make_audio(folder: Path, seconds: float) -> Path:
    path = folder / "long.mp3"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=330:duration={seconds}",
            "-b:a",
            "64k",
            str(path),
        ],
        check=True,
    )
    return path


def centre(audio: Path, start: datetime, seconds: float) -> tuple[ThreadingHTTPServer, str]:
    """A stand-in centre: one day document, one audio file, long-polls held, reports taken."""
    data = audio.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    tz = start.astimezone().tzinfo
    day = start.astimezone(tz).date().isoformat()
    item = {
        "kind": "clip",
        "clip": "long",
        "language": "vi",
        "programme": "bench",
        "priority": "normal",
        "offset": 0.0,
        "duration": seconds,
        "air_time": start.astimezone(tz).isoformat(),
        "sha256": sha,
        "url": f"{base}/stations/bench/audio/{sha}.mp3",
    }
    doc = json.dumps(
        {
            "station": "bench",
            "date": day,
            "slots": [
                {
                    "slot": "0000",
                    "start": start.astimezone(tz).isoformat(),
                    "duration": seconds,
                    "items": [item],
                }
            ],
        }
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.startswith(f"/stations/bench/{day}.json"):
                if self.headers.get("If-None-Match") == '"day"':
                    if "wait=" in self.path:
                        time.sleep(float(self.path.split("wait=")[1].split("&")[0]))
                    self.send_response(304)
                    self.end_headers()
                    return
                self._send(200, doc, {"ETag": '"day"'})
            elif self.path.startswith(f"/stations/bench/audio/{sha}.mp3"):
                self._send(200, data, {})
            else:
                self._send(404, b"{}", {})

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._send(202 if self.path.endswith("/reports") else 204, b"", {})

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server.RequestHandlerClass = Handler
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, base


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def python_pass() -> tuple[float, float]:
    """Wall and CPU seconds of a bare interpreter start, the floor for any Python program."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - began, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--play", type=float, default=60.0, help="seconds of playback measured")
    parser.add_argument("--idle", type=float, default=8.0, help="seconds idle before the slot")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-station-") as tmp:
        folder = Path(tmp)
        audio = make_audio(folder, args.play + 10)
        start = datetime.now(UTC) + timedelta(seconds=args.idle + 3)
        server, base = centre(audio, start, args.play + 10)
        runs = [python_pass() for _ in range(5)]
        baseline, baseline_cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        log = (folder / "agent.log").open("wb")
        began = time.perf_counter()
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "broadcaster",
                "station",
                "run",
                "--centre",
                base,
                "--station",
                "bench",
                "--token",
                "t",
                "--cache",
                str(folder / "cache"),
                "--mpv-option",
                "ao=null",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            while b"station.agent_started" not in (folder / "agent.log").read_bytes():
                if agent.poll() is not None:
                    raise SystemExit((folder / "agent.log").read_text())
                time.sleep(0.005)
            started = time.perf_counter() - began
            start_cpu = cpu_seconds(agent.pid)
            time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() - 1))
            idle_rss = rss_mb(agent.pid)
            deadline = time.monotonic() + args.idle + 30
            while b"station.item_started" not in (folder / "agent.log").read_bytes():
                if time.monotonic() > deadline:
                    raise SystemExit(
                        "the slot never started:\n" + (folder / "agent.log").read_text()[-3000:]
                    )
                time.sleep(0.05)
            cpu0, wall0 = cpu_seconds(agent.pid), time.perf_counter()
            time.sleep(args.play)
            cpu = cpu_seconds(agent.pid) - cpu0
            wall = time.perf_counter() - wall0
            playing_rss = rss_mb(agent.pid)
        finally:
            agent.terminate()
            agent.wait(15)
            server.shutdown()
        print(
            f"python -c pass            {baseline * 1000:7.0f} ms   wall, "
            f"{baseline_cpu * 1000:.0f} ms CPU (baseline, same run)"
        )
        print(
            f"agent start (to started)  {started * 1000:7.0f} ms   wall, "
            f"{start_cpu * 1000:.0f} ms CPU; goal < 500 ms (mpv listening included)"
        )
        print(f"resident memory, idle     {idle_rss:7.1f} MB   goal < 60 MB (mpv excluded)")
        print(f"resident memory, playing  {playing_rss:7.1f} MB")
        print(
            f"CPU while playing         {cpu / wall * 100:7.2f} %    of one core, goal < 1 % "
            f"({cpu / wall * 3600:.1f} CPU-s per hour of playback, {wall:.0f} s measured)"
        )


if __name__ == "__main__":
    main()
