"""The centre's side of the agent: heartbeats, reports by id, long-polled days, metrics."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx

from tests.audio_fixtures import TZ, day_plan, publish_plan
from tests.daemon_fixtures import broadcaster
from tests.station_fixtures import token

STATION = "linh-thong"


def _day_url(base: str) -> str:
    today = datetime.now(UTC).astimezone(TZ).date().isoformat()
    return f"{base}/stations/{STATION}/{today}.json"


def test_a_long_poll_answers_as_soon_as_the_day_changes(served) -> None:
    config, base = served
    now = datetime.now(UTC)
    publish_plan(config, day_plan(now + timedelta(minutes=5)), now)
    auth = {"token": token(STATION)}
    first = httpx.get(_day_url(base), params=auth)
    etag = first.headers["etag"]
    asked = time.monotonic()
    held = httpx.get(
        _day_url(base), params={**auth, "wait": "1.5"}, headers={"If-None-Match": etag}, timeout=10
    )
    assert held.status_code == 304 and time.monotonic() - asked >= 1.4
    answers: list[tuple[float, httpx.Response]] = []

    def poll() -> None:
        response = httpx.get(
            _day_url(base),
            params={**auth, "wait": "20"},
            headers={"If-None-Match": etag},
            timeout=30,
        )
        answers.append((time.monotonic(), response))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(1.0)
    changed = time.monotonic()
    publish_plan(config, day_plan(now + timedelta(minutes=6)), now)
    published = time.monotonic()
    poller.join(30)
    ((answered, response),) = answers
    assert response.status_code == 200 and response.headers["etag"] != etag
    assert answered - published < 1.0, answered - changed


def test_reports_resent_by_an_agent_are_stored_once_and_heartbeats_show_in_stations(
    served,
) -> None:
    config, base = served
    at = datetime.now(UTC).isoformat()
    batch = [
        {
            "id": f"report-{n:04d}",
            "event": "finished",
            "item": "a.vi",
            "slot": "0600",
            "day": "2026-12-01",
            "started": at,
            "finished": at,
        }
        for n in range(3)
    ]
    url = f"{base}/stations/{STATION}/reports"
    first = httpx.post(url, params={"token": token(STATION)}, json=batch)
    again = httpx.post(url, params={"token": token(STATION)}, json=batch)
    assert first.json() == {"stored": 3, "duplicates": 0}
    assert again.json() == {"stored": 0, "duplicates": 3}
    bad = httpx.post(url, params={"token": token(STATION)}, json=[{**batch[0], "event": "x"}])
    assert bad.status_code == 422
    beat = {
        "at": at,
        "version": "9.9",
        "cache_until": "2026-12-02",
        "disk_free": 123,
        "player": "playing",
        "last_item": "a.vi",
        "last_aired": at,
    }
    sent = httpx.post(
        f"{base}/stations/{STATION}/heartbeat", params={"token": token(STATION)}, json=beat
    )
    assert sent.status_code == 204
    refused = httpx.post(
        f"{base}/stations/{STATION}/heartbeat", params={"token": token("cho-chu")}, json=beat
    )
    assert refused.status_code == 403
    rows = {
        r["station"]: r
        for r in json.loads(broadcaster(config, "stations", "--format", "json").stdout)
    }
    assert rows[STATION]["state"] == "online"
    assert rows[STATION]["cache_until"] == "2026-12-02"
    assert rows[STATION]["last_aired"] == "a.vi"
    assert rows["cho-chu"]["state"] == "offline" and rows["cho-chu"]["last_seen"] is None
    metrics = httpx.get(f"{base}/metrics").text
    assert f'broadcaster_station_last_seen_timestamp_seconds{{station="{STATION}"}}' in metrics
