"""A real player (mpv) fetches a station's playlist from a running server and decodes it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from click.testing import CliRunner

from broadcaster.cli import main
from tests.audio_fixtures import day_plan, mpv_decoded_seconds, publish_plan
from tests.conftest import STORAGE_AGNOSTIC


@STORAGE_AGNOSTIC
def test_mpv_decodes_every_item_of_the_published_m3u_at_its_manifest_duration(
    served, tmp_path: Path
):
    config, base = served
    now = datetime.now(UTC)
    publish_plan(config, day_plan(now + timedelta(minutes=5)), now)
    listed = CliRunner().invoke(main, ["--config", str(config), "stations", "--format", "json"])
    row = next(r for r in json.loads(listed.output) if r["station"] == "linh-thong")
    manifest = httpx.get(row["manifest_url"]).raise_for_status().json()
    decoded = mpv_decoded_seconds(row["playlist_url"], tmp_path / "pcm")
    expected = [item["duration"] for item in manifest["items"] if "url" in item]
    assert len(decoded) == len(expected) >= 5
    for got, want in zip(decoded, expected, strict=True):
        assert abs(got - want) <= 0.2, (decoded, expected)
