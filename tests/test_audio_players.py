"""A real player (mpv) fetches a station's playlist from a running server and decodes it."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from click.testing import CliRunner

from broadcaster.cli import main
from tests.audio_fixtures import (
    REPO,
    day_plan,
    publish_plan,
)

SCRIPT = REPO / "tests" / "data" / "mpv_pcm_per_item.lua"


def _decoded_seconds(path: Path) -> float:
    """Length of the PCM mpv wrote (sox reads its WAVE_FORMAT_EXTENSIBLE header)."""
    out = subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout)


def test_mpv_decodes_every_item_of_the_published_m3u_at_its_manifest_duration(
    served, tmp_path: Path
):
    config, base = served
    now = datetime.now(UTC)
    publish_plan(config, day_plan(now + timedelta(minutes=5)), now)
    listed = CliRunner().invoke(main, ["--config", str(config), "stations", "--format", "json"])
    row = next(r for r in json.loads(listed.output) if r["station"] == "linh-thong")
    manifest = httpx.get(row["manifest_url"]).raise_for_status().json()
    out = tmp_path / "pcm"
    out.mkdir()
    played = subprocess.run(
        [
            "mpv",
            "--no-config",
            "--no-video",
            "--ao=pcm",
            "--gapless-audio=no",
            "--really-quiet",
            f"--script={SCRIPT}",
            f"--script-opts=pcmdir={out}",
            row["playlist_url"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    reasons = [line.split()[2] for line in played.stdout.splitlines() if line.startswith("ITEM")]
    assert reasons[0] == "redirect" and set(reasons[1:]) == {"eof"}, played.stdout
    decoded = [_decoded_seconds(p) for p in sorted(out.glob("*.wav"))]
    expected = [item["duration"] for item in manifest["items"] if "url" in item]
    assert len(decoded) == len(expected) >= 5
    for got, want in zip(decoded, expected, strict=True):
        assert abs(got - want) <= 0.2, (decoded, expected)
