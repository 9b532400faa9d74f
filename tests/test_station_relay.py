"""A relay airs from a real Icecast server through the agent, or its fallback when it is down."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from broadcaster.occurrence import Relay
from tests.audio_fixtures import TZ, occ, publish_plan
from tests.conftest import STORAGE_AGNOSTIC, free_port
from tests.daemon_fixtures import broadcaster, wait_for
from tests.station_fixtures import AgentProcess, Icecast, seconds, token

STATION = "linh-thong"
RELAY_SECONDS = 6


@STORAGE_AGNOSTIC
def test_a_relay_airs_the_stream_for_its_length_and_the_fallback_when_icecast_is_down(
    served,
    tmp_path: Path,
) -> None:
    config, base = served
    icecast = Icecast(free_port()).start()
    agent = AgentProcess(STATION, base, tmp_path / "agent")
    try:
        wait_for(icecast.live, 20, "Icecast to serve the stream: " + icecast.log())
        now = datetime.now(UTC).replace(microsecond=0)
        first, second = now + timedelta(seconds=15), now + timedelta(seconds=45)
        stream = Relay("district", icecast.url, "tiep-song-vov")
        publish_plan(
            config,
            [
                occ(
                    "district-news",
                    "relay",
                    "05440",
                    at,
                    "priority",
                    stream,
                    timedelta(seconds=RELAY_SECONDS),
                )
                for at in (first, second)
            ],
            now,
        )
        agent.start()
        relay = wait_for(
            lambda: len(got := _events(config, first, second, "finished")) >= 2 and got,
            60,
            "the relay to air: " + agent.output(),
        )
        assert [r["item"] for r in relay] == ["chime.zxx", "district-news"]
        wavs = wait_for(lambda: len(agent.wavs()) >= 2 and agent.wavs(), 5, "the relay's audio")
        assert abs(seconds(wavs[1]) - RELAY_SECONDS) <= 0.5, seconds(wavs[1])
        icecast.stop()
        later = second + timedelta(minutes=5)
        failed = wait_for(
            lambda: _events(config, second, later, "failed"),
            60,
            "the relay to fail with Icecast down: " + agent.output(),
        )
        assert failed[0]["item"] == "district-news" and failed[0]["reason"], failed
        done = wait_for(
            lambda: len(got := _events(config, second, later, "finished")) >= 2 and got,
            30,
            "the fallback to air",
        )
        assert [r["item"] for r in done] == ["chime.zxx", "tiep-song-vov.vi"]
        wait_for(lambda: len(agent.wavs()) >= 4, 5, "the fallback's audio")
        manifest = _slot(base, second)
        fallback = manifest["items"][1]["fallback"]
        assert abs(seconds(agent.wavs()[3]) - fallback["duration"]) <= 0.2
        gaps = json.loads(
            broadcaster(config, "asrun", "--gaps", manifest["date"], "--format", "json").stdout
        )
        assert not [g for g in gaps[STATION]["gaps"] if g["programme"] == "district-news"]
    finally:
        agent.stop()
        icecast.remove()


def _events(config: Path, start: datetime, end: datetime, event: str) -> list[dict]:
    """Reports of one kind for items started within [start - 1 s, end)."""
    rows = json.loads(broadcaster(config, "asrun", "--format", "json").stdout)
    since = (start - timedelta(seconds=1)).astimezone(TZ).isoformat(timespec="seconds")
    until = end.astimezone(TZ).isoformat(timespec="seconds")
    return [r for r in rows if r["event"] == event and since <= r["started"] < until]


def _slot(base: str, at: datetime) -> dict:
    day = at.astimezone(TZ).date().isoformat()
    doc = httpx.get(f"{base}/stations/{STATION}/{day}.json", params={"token": token(STATION)})
    wanted = at.astimezone(TZ).isoformat(timespec="seconds")
    return next(s | {"date": day} for s in doc.json()["slots"] if s["start"] == wanted)
