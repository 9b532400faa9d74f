"""The daemon as a real process publishes stations' days and serves them itself."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from broadcaster.audio.tokens import Tokens
from tests.audio_fixtures import SECRET, audio_config, mpv_decoded_seconds, seed_store
from tests.conftest import REPO, free_port
from tests.daemon_fixtures import broadcaster, config_factory, daemon_factory, wait_for

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
SAMPLES = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "schedules").glob("*.toml")}


@pytest.fixture
def daemons():
    yield from daemon_factory()


@pytest.fixture
def daemon_with_web(tmp_path: Path, db_url: str, engine, normalised_store: Path, daemons):
    """A daemon on the sample schedules, its station API on a free port; (config, base URL)."""
    port = free_port()
    config = audio_config(config_factory(tmp_path, db_url)(SAMPLES), port, render_slots=False)
    seed_store(normalised_store, tmp_path / "data")
    daemons(config).start()
    return config, f"http://127.0.0.1:{port}"


def _day(base: str, station: str, days_ahead: int = 0) -> dict:
    token = Tokens(SECRET.encode()).for_station(station)
    day = datetime.now(UTC).astimezone(HCM).date() + timedelta(days=days_ahead)
    response = httpx.get(f"{base}/stations/{station}/{day}.json", params={"token": token})
    return response.json() if response.status_code == 200 else {}


def _programmes(day: dict) -> list[str]:
    return [
        item["programme"]
        for slot in day.get("slots", [])
        for item in slot.get("items", [])
        if item.get("programme")
    ]


def test_daemon_publishes_every_station_and_serves_it_over_http(daemon_with_web) -> None:
    _, base = daemon_with_web
    day = wait_for(lambda: _day(base, "linh-thong"), 30, "linh-thong's day from the daemon")
    assert "commune-bulletin" in _programmes(day)
    assert "district-bulletin" in _programmes(day)
    assert httpx.get(f"{base}/healthz").status_code == 200


def test_level_change_republishes_van_rounds_within_five_seconds(daemon_with_web, people) -> None:
    config, base = daemon_with_web
    # Tomorrow's day: today's rounds already past keep the level they aired at.
    before = wait_for(lambda: _day(base, "van-167", 1), 30, "the van's day")
    rounds_before = len(before["slots"])
    broadcaster(config, "level", "set", "167", "5.3", "--reason", "Chỉ thị 16")
    changed = time.monotonic()
    after = wait_for(
        lambda: (d := _day(base, "van-167", 1)) and len(d["slots"]) > rounds_before and d,
        5,
        "the van's rounds to follow degree 3",
    )
    elapsed = time.monotonic() - changed
    assert len(after["slots"]) == 3, (rounds_before, elapsed)


def test_mpv_plays_a_slot_from_the_daemon_at_its_manifest_durations(
    daemon_with_web, tmp_path: Path
) -> None:
    _, base = daemon_with_web
    day = wait_for(lambda: _day(base, "linh-thong"), 30, "linh-thong's day from the daemon")
    slot = next(s for s in day["slots"] if any(i["kind"] == "clip" for i in s["items"]))
    decoded = mpv_decoded_seconds(slot["playlist_url"], tmp_path / "pcm")
    expected = [item["duration"] for item in slot["items"] if "url" in item]
    assert len(decoded) == len(expected) >= 3
    for got, want in zip(decoded, expected, strict=True):
        assert abs(got - want) <= 0.2, (decoded, expected)
