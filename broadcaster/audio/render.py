"""Loudness-normalise clips once and mix slots, all through ffmpeg.

Loudness is measured in LUFS (EBU R128), not dBFS: a plain gain is not
loudness and has no limiter. Speech from a synthesiser is peaky, so loudnorm
alone falls back to its dynamic mode and lands a LU or two short of the
target; a gain plus a sample-peak limiter in front of it gives loudnorm's
linear mode room to reach the target under the true-peak ceiling.

Every output lands in the content-addressed `AudioStore` (name = SHA-256 of
the bytes), so a file once published never changes and stations cache it
forever. Small JSON index files map "what was asked" to "which hash".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog
from sqlalchemy import Engine

from broadcaster.audio.library import file_sha256, probe_duration, write_atomic
from broadcaster.store import published

log = structlog.get_logger(__name__)

SAMPLE_RATE = 44100
SILENCE_DB = -50
EDGE_PAD = 0.05  # seconds of the detected silence kept, so onsets are not clipped
AUDIO_SUFFIX = ".mp3"


class RenderError(Exception):
    """ffmpeg could not process a file; the message names it and quotes ffmpeg."""


@dataclass(frozen=True)
class LoudnessTarget:
    """Where every clip should land: integrated loudness and true-peak ceiling."""

    lufs: float = -16.0
    true_peak: float = -1.5
    lra: float = 11.0
    bitrate_kbps: int = 64

    @property
    def key(self) -> str:
        return f"i{self.lufs:g}_tp{self.true_peak:g}_lra{self.lra:g}_b{self.bitrate_kbps}"


@dataclass(frozen=True)
class Rendered:
    """A published audio file: its hash (also its name) and decoded duration in seconds."""

    sha256: str
    duration: float
    lufs: float | None = None
    true_peak: float | None = None

    @property
    def name(self) -> str:
        return self.sha256 + AUDIO_SUFFIX


@dataclass(frozen=True)
class Loudness:
    lufs: float
    true_peak: float


class AudioStore:
    """Immutable audio named by content hash, plus an index of how each was made.

    With an engine the database holds the index and the bytes for every node
    (`store.published`) and the folder is this node's cache of them: a node
    finds there what another rendered (ffmpeg builds differ in their bytes, so
    rendering again could change a hash stations already hold).
    """

    def __init__(self, root: Path, engine: Engine | None = None) -> None:
        self.root = root
        self.index_dir = root / ".index"
        self.engine = engine

    def path(self, sha256: str) -> Path:
        return self.root / (sha256 + AUDIO_SUFFIX)

    def put(self, tmp: Path) -> str:
        """Move a finished temporary file into the store under its own hash."""
        digest = file_sha256(tmp)
        target = self.path(digest)
        if target.exists():
            tmp.unlink()
        else:
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        return digest

    def lookup(self, key: str) -> Rendered | None:
        entry = self.index_dir / f"{key}.json"
        if entry.exists():
            rendered = Rendered(**json.loads(entry.read_text()))
            if (
                self.engine is not None
                and self.path(rendered.sha256).exists()
                and published.lookup_render(self.engine, key) is None
            ):
                self._share(key, rendered)  # made before the database held renders
        elif self.engine is not None and (found := published.lookup_render(self.engine, key)):
            rendered = Rendered(**found)
            write_atomic(entry, json.dumps(asdict(rendered)).encode())
        else:
            return None
        return rendered if self.fetch(rendered.sha256) is not None else None

    def remember(self, key: str, rendered: Rendered) -> None:
        write_atomic(self.index_dir / f"{key}.json", json.dumps(asdict(rendered)).encode())
        if self.engine is not None:
            self._share(key, rendered)

    def _share(self, key: str, rendered: Rendered) -> None:
        """Give every node this render: its bytes first, then the index row naming them."""
        assert self.engine is not None
        self.upload([rendered.sha256])
        published.remember_render(self.engine, key, asdict(rendered))

    def fetch(self, sha256: str) -> Path | None:
        """The file of a hash, copied from the database into this node's cache when missing
        here; None when neither holds it (or the stored bytes do not match their name)."""
        path = self.path(sha256)
        if path.exists():
            return path
        if self.engine is None:
            return None
        tmp = self.temp_path()  # a name of its own: several requests may fetch one hash
        return path if published.copy_audio(self.engine, sha256, tmp, path) else None

    def upload(self, hashes: Iterable[str]) -> None:
        """Copy into the database the files of `hashes` it lacks, so every node can serve them."""
        if self.engine is None:
            return
        for digest in sorted(published.missing_audio(self.engine, hashes)):
            with self.path(digest).open("rb") as source:
                published.put_audio(self.engine, digest, source)

    def temp_path(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.root, prefix=".render-", suffix=AUDIO_SUFFIX)
        os.close(fd)
        return Path(name)


def normalised_key(source_sha256: str, target: LoudnessTarget) -> str:
    """Name under which a clip's normalised rendering is remembered in the store."""
    return f"clip-{source_sha256}-{target.key}"


def normalise(
    source: Path, source_sha256: str, target: LoudnessTarget, store: AudioStore
) -> Rendered:
    """Return the clip trimmed of edge silence at the target loudness, rendering it once."""
    key = normalised_key(source_sha256, target)
    cached = store.lookup(key)
    if cached is not None:
        return cached
    actual = file_sha256(source)
    if actual != source_sha256:
        raise RenderError(
            f"{source}: content changed since import (sha256 {actual[:12]}…, "
            f"catalogue says {source_sha256[:12]}…); re-import it"
        )
    start, end = _speech_bounds(source)
    trim = f"atrim={start:.3f}:{end:.3f},asetpts=PTS-STARTPTS"
    chain = _limited_chain(source, trim, target)
    measured = _loudnorm_measure(source, chain, target)
    loudnorm = (
        f"loudnorm=I={target.lufs}:TP={target.true_peak}:LRA={target.lra}"
        f":measured_I={measured['input_i']}:measured_TP={measured['input_tp']}"
        f":measured_LRA={measured['input_lra']}:measured_thresh={measured['input_thresh']}"
        f":offset={measured['target_offset']}:linear=true"
    )
    tmp = store.temp_path()
    _ffmpeg(
        [
            "-i",
            str(source),
            "-af",
            f"{chain},{loudnorm},aresample={SAMPLE_RATE}",
            "-ac",
            "1",
            *_mp3(target),
            str(tmp),
        ],
        source,
    )
    level = measure_loudness(tmp)
    digest = store.put(tmp)
    rendered = Rendered(digest, probe_duration(store.path(digest)), level.lufs, level.true_peak)
    store.remember(key, rendered)
    log.info(
        "audio.clip_normalised",
        source=source.name,
        sha256=rendered.sha256,
        lufs=level.lufs,
        true_peak=level.true_peak,
        duration=rendered.duration,
    )
    return rendered


def _limited_chain(source: Path, trim: str, target: LoudnessTarget) -> str:
    """Find a gain that, limited below the ceiling, brings the clip to or above the target."""
    ceiling = 10 ** ((target.true_peak - 1.0) / 20)
    first = _loudnorm_measure(source, trim, target)
    gain = target.lufs - float(first["input_i"])
    chain = trim
    for _ in range(4):
        chain = f"{trim},volume={gain:.2f}dB,alimiter=limit={ceiling:.4f}:level=disabled"
        level = float(_loudnorm_measure(source, chain, target)["input_i"])
        if level >= target.lufs - 0.3:
            break
        gain += target.lufs - level + 0.3
    return chain


def _speech_bounds(source: Path) -> tuple[float, float]:
    """Find where sound starts and ends, so leading and trailing silence can be cut."""
    duration = probe_duration(source)
    err = _ffmpeg(
        ["-i", str(source), "-af", f"silencedetect=n={SILENCE_DB}dB:d=0.05", "-f", "null", "-"],
        source,
    )
    starts = [float(x) for x in re.findall(r"silence_start: (-?[\d.]+)", err)]
    ends = [float(x) for x in re.findall(r"silence_end: ([\d.]+)", err)]
    start, end = 0.0, duration
    if starts and starts[0] <= 0.01 and ends:
        start = max(0.0, ends[0] - EDGE_PAD)
    if starts and len(starts) > len(ends) or (starts and ends and ends[-1] >= duration - 0.01):
        end = min(duration, starts[-1] + EDGE_PAD)
    if end - start < 0.1:
        raise RenderError(f"{source}: nothing but silence (below {SILENCE_DB} dBFS)")
    return start, end


def _loudnorm_measure(source: Path, chain: str, target: LoudnessTarget) -> dict[str, str]:
    err = _ffmpeg(
        [
            "-i",
            str(source),
            "-af",
            f"{chain},loudnorm=I={target.lufs}:TP={target.true_peak}:LRA={target.lra}"
            ":print_format=json",
            "-f",
            "null",
            "-",
        ],
        source,
    )
    match = re.search(r"\{[^{}]*\"input_i\"[^{}]*\}", err)
    if match is None:
        raise RenderError(f"{source}: loudnorm printed no measurement")
    measured: dict[str, str] = json.loads(match.group(0))
    if measured["input_i"] in ("-inf", "inf"):
        raise RenderError(f"{source}: loudness cannot be measured (silent or too short)")
    return measured


def measure_loudness(path: Path) -> Loudness:
    """Measure integrated loudness and true peak with ffmpeg's ebur128 filter."""
    err = _ffmpeg(["-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"], path)
    summary = err[err.rfind("Summary:") :]
    lufs = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    peak = re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    if lufs is None or peak is None:
        raise RenderError(f"{path}: ebur128 printed no summary")
    return Loudness(float(lufs.group(1)), float(peak.group(1)))


def render_sequence(
    parts: Sequence[Rendered],
    gap: float,
    target: LoudnessTarget,
    store: AudioStore,
    mix_max_seconds: float,
) -> Rendered:
    """Mix items into one file with gaps between them; long ones join without decoding."""
    spec = "|".join(p.sha256 for p in parts) + f"|gap={gap:g}|{target.key}"
    key = "seq-" + hashlib.sha256(spec.encode()).hexdigest()
    cached = store.lookup(key)
    if cached is not None:
        return cached
    total = sum(p.duration for p in parts) + gap * max(0, len(parts) - 1)
    tmp = store.temp_path()
    if total <= mix_max_seconds:
        _mix_decoded(parts, gap, target, store, tmp)
    else:
        _concat_streaming(parts, gap, target, store, tmp)
    digest = store.put(tmp)
    rendered = Rendered(digest, probe_duration(store.path(digest)))
    store.remember(key, rendered)
    log.info(
        "audio.sequence_rendered",
        items=len(parts),
        seconds=round(rendered.duration, 1),
        streamed=total > mix_max_seconds,
        sha256=digest,
    )
    return rendered


def _mix_decoded(
    parts: Sequence[Rendered], gap: float, target: LoudnessTarget, store: AudioStore, out: Path
) -> None:
    """Decode every item, join them with exact silences and encode the slot once.

    Decoding drops each MP3's encoder padding, so a short slot lasts exactly its
    items plus its gaps; the cost is one decode and one encode of the whole slot.
    """
    inputs: list[str] = []
    chain: list[str] = []
    for i, part in enumerate(parts):
        inputs += ["-i", str(store.path(part.sha256))]
        if i and gap > 0:
            chain.append(f"aevalsrc=0:s={SAMPLE_RATE}:c=mono:d={gap:.3f}[g{i}];")
        chain.append(f"[{i}:a]aresample={SAMPLE_RATE},aformat=channel_layouts=mono[a{i}];")
    labels = "".join((f"[g{i}]" if i and gap > 0 else "") + f"[a{i}]" for i in range(len(parts)))
    count = len(parts) + (len(parts) - 1 if gap > 0 else 0)
    graph = "".join(chain) + f"{labels}concat=n={count}:v=0:a=1[mix]"
    _ffmpeg([*inputs, "-filter_complex", graph, "-map", "[mix]", *_mp3(target), str(out)], out)


def _concat_streaming(
    parts: Sequence[Rendered], gap: float, target: LoudnessTarget, store: AudioStore, out: Path
) -> None:
    """Copy the items' MP3 frames one after another: no decoding, memory stays flat.

    Every normalised clip has the same codec, rate and channels, so the concat
    demuxer can join them without re-encoding a two-hour loop.
    """
    with tempfile.TemporaryDirectory(dir=store.root) as tmp:
        silence = Path(tmp) / f"gap{AUDIO_SUFFIX}"
        _ffmpeg(
            [
                "-f",
                "lavfi",
                "-i",
                f"anullsrc=r={SAMPLE_RATE}:cl=mono",
                "-t",
                f"{gap:.3f}",
                *_mp3(target),
                str(silence),
            ],
            silence,
        )
        listing = Path(tmp) / "list.txt"
        with listing.open("w") as fh:
            for i, part in enumerate(parts):
                if i and gap > 0:
                    fh.write(f"file '{silence}'\n")
                fh.write(f"file '{store.path(part.sha256)}'\n")
        _ffmpeg(
            ["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", "-f", "mp3", str(out)],
            listing,
        )


def _mp3(target: LoudnessTarget) -> list[str]:
    return ["-c:a", "libmp3lame", "-b:a", f"{target.bitrate_kbps}k", "-f", "mp3"]


def _ffmpeg(args: list[str], subject: Path) -> str:
    """Run ffmpeg quietly and return its log; fail with the tail of that log."""
    result = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-nostdin", "-y", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise RenderError(f"{subject}: ffmpeg failed: {tail}")
    return result.stderr
