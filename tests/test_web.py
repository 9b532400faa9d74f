"""The station API as a real `broadcaster serve` process, spoken to with httpx."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from click.testing import CliRunner

from broadcaster.audio.tokens import Tokens
from broadcaster.cli import main
from tests.audio_fixtures import (
    SECRET,
    day_plan,
    publish_plan,
)

TOKENS = Tokens(SECRET.encode())


def _publish_around_now(config: Path) -> datetime:
    now = datetime.now(UTC)
    publish_plan(config, day_plan(now - timedelta(seconds=2)), now)
    return now


def _current(base: str, station: str, ext: str = "m3u", **params: str) -> httpx.Response:
    return httpx.get(f"{base}/stations/{station}/current.{ext}", params=params)


def test_tokens_are_required_and_tied_to_their_station(served):
    config, base = served
    _publish_around_now(config)
    assert _current(base, "linh-thong").status_code == 401
    assert _current(base, "linh-thong", token="bogus").status_code == 401
    other = _current(base, "linh-thong", token=TOKENS.for_station("lam-vy"))
    assert other.status_code == 403
    mine = _current(base, "linh-thong", token=TOKENS.for_station("linh-thong"))
    assert mine.status_code == 200
    assert mine.headers["content-type"].startswith("audio/x-mpegurl")
    bearer = httpx.get(
        f"{base}/stations/linh-thong/current.json",
        headers={"Authorization": f"Bearer {TOKENS.for_station('linh-thong')}"},
    )
    assert bearer.json()["station"] == "linh-thong"


def test_unknown_station_and_path_traversal_are_refused(served):
    config, base = served
    _publish_around_now(config)
    token = TOKENS.for_station("linh-thong")
    assert (
        httpx.get(
            f"{base}/stations/nowhere/current.m3u", params={"token": TOKENS.for_station("nowhere")}
        ).status_code
        == 404
    )
    for path in (
        "/stations/linh-thong/..%2F..%2Fplan.json",
        "/stations/linh-thong/../x.json",
        "/stations/linh-thong/2021-01-01/..%2F..%2Fx.json",
        "/stations/linh-thong/audio/..%2F..%2Fplan.json",
        "/stations/linh-thong/audio/%2e%2e%2f%2e%2e%2fstation-token-secret",
    ):
        response = httpx.get(base + path, params={"token": token})
        assert response.status_code == 404, path
        assert "test-secret" not in response.text


def test_manifest_has_etag_and_answers_304_when_unchanged(served):
    config, base = served
    _publish_around_now(config)
    token = TOKENS.for_station("linh-thong")
    first = _current(base, "linh-thong", "json", token=token)
    etag = first.headers["etag"]
    again = httpx.get(
        f"{base}/stations/linh-thong/current.json",
        params={"token": token},
        headers={"If-None-Match": etag},
    )
    assert again.status_code == 304
    manifest = first.json()
    given = httpx.get(manifest["playlist_url"].replace(".m3u", ".json"))
    assert given.status_code == 200 and given.headers["etag"] == etag


def test_next_slot_is_the_one_after_the_current(served):
    config, base = served
    now = _publish_around_now(config)
    token = TOKENS.for_station("lam-vy")
    upcoming = httpx.get(f"{base}/stations/lam-vy/next.json", params={"token": token}).json()
    assert datetime.fromisoformat(upcoming["start"]) > now


def test_audio_is_served_with_ranges_and_cached_forever(served):
    config, base = served
    _publish_around_now(config)
    token = TOKENS.for_station("linh-thong")
    manifest = _current(base, "linh-thong", "json", token=token).json()
    url = manifest["items"][1]["url"]
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/mpeg"
    assert "immutable" in whole.headers["cache-control"]
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == whole.content[100:200]
    assert httpx.get(url.split("?")[0]).status_code == 401


def test_playback_reports_are_stored_and_shown_by_asrun(served):
    config, base = served
    _publish_around_now(config)
    token = TOKENS.for_station("linh-thong")
    started = datetime.now(UTC).replace(microsecond=0)
    reports = [
        {
            "item": "ban-tin-5k/vi",
            "slot": "0600",
            "started": started.isoformat(),
            "finished": (started + timedelta(seconds=10)).isoformat(),
        }
    ]
    url = f"{base}/stations/linh-thong/reports"
    assert httpx.post(url, params={"token": token}, json=reports).status_code == 202
    assert (
        httpx.post(
            url, params={"token": token}, json={"item": "x", "started": "2021-09-01T06:00:00"}
        ).status_code
        == 422
    )
    assert (
        httpx.post(url, params={"token": token}, content=b"[" + b" " * 70000 + b"]").status_code
        == 413
    )
    assert httpx.post(url, json=reports).status_code == 401
    result = CliRunner().invoke(
        main, ["--config", str(config), "asrun", "--station", "linh-thong", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["item"] for r in rows] == ["ban-tin-5k/vi"]
    assert datetime.fromisoformat(rows[0]["started"]) == started


def test_health_and_metrics_count_station_polls(served):
    config, base = served
    _publish_around_now(config)
    health = httpx.get(f"{base}/healthz")  # `serve` alone: stations served, nobody schedules
    assert health.status_code == 503
    assert health.json()["reasons"] == ["no scheduler has run on this database"]
    _current(base, "linh-thong", token=TOKENS.for_station("linh-thong"))
    _current(base, "linh-thong")
    metrics = httpx.get(f"{base}/metrics").text
    assert 'broadcaster_station_polls_total{kind="playlist",status="200"} 1.0' in metrics
    assert 'broadcaster_station_polls_total{kind="playlist",status="401"} 1.0' in metrics


def test_stations_command_lists_current_or_next_urls_with_tokens(served):
    config, base = served
    _publish_around_now(config)
    result = CliRunner().invoke(main, ["--config", str(config), "stations", "--format", "json"])
    rows = {r["station"]: r for r in json.loads(result.output)}
    row = rows["linh-thong"]
    assert row["playlist_url"].startswith(base + "/stations/linh-thong/")
    assert row["playlist_url"].endswith("?token=" + TOKENS.for_station("linh-thong"))
    assert httpx.get(row["manifest_url"]).json()["station"] == "linh-thong"


def test_tokens_never_reach_the_log(served):
    config, base = served
    _publish_around_now(config)
    token = TOKENS.for_station("linh-thong")
    _current(base, "linh-thong", token=token)
    _current(base, "linh-thong", token=TOKENS.for_station("lam-vy"))
    log = (config.parent / "data" / "broadcaster.log").read_text()
    assert "web.slot_served" in log
    assert token not in log and TOKENS.for_station("lam-vy") not in log
