"""A relay airs from a real Icecast server through the agent, or its fallback when it is down."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broadcaster.audio.library import load_library
from broadcaster.audio.publish import Publisher, prepare_library
from broadcaster.audio.settings import AudioSettings
from broadcaster.audio.tokens import Tokens
from tests.audio_fixtures import REPO, TZ
from tests.conftest import free_port
from tests.daemon_fixtures import broadcaster, wait_for
from tests.station_fixtures import AgentProcess, Icecast, seconds, token

STATION = "linh-thong"
RELAY_SECONDS = 6.0


def _relay_slot(slot_id: str, start: datetime, url: str, fallback: dict) -> dict:
    """A slot holding one relay item, in the manifest shape the publisher writes."""
    return {
        "slot": slot_id, "start": start.isoformat(), "duration": RELAY_SECONDS,
        "items": [{"kind": "relay", "programme": "district-bulletin", "priority": "priority",
                   "offset": 0.0, "duration": RELAY_SECONDS, "air_time": start.isoformat(),
                   "relay": "district", "title": "district", "url": url,
                   "fallback": fallback}],
    }


def _write_day(data_dir: Path, day: str, slots: list[dict]) -> None:
    folder = data_dir / "publish" / "stations" / day
    folder.mkdir(parents=True, exist_ok=True)
    body = {"station": STATION, "date": day, "slots": slots}
    (folder / f"{STATION}.json").write_text(json.dumps(body), encoding="utf-8")


def test_a_relay_airs_the_stream_for_its_length_and_the_fallback_when_icecast_is_down(
    served, tmp_path: Path,
) -> None:
    config, base = served
    data_dir = config.parent / "data"
    pub = Publisher(data_dir / "publish", base, TZ, Tokens(b"x"), AudioSettings())
    _, rendered = prepare_library(load_library(REPO / "audio"), pub)
    clip = rendered[("tiep-song-vov", "vi")]
    fallback = {"clip": "tiep-song-vov", "language": "vi", "title": "Tiếp sóng",
                "sha256": clip.sha256, "duration": clip.duration,
                "url": f"{base}/stations/{STATION}/audio/{clip.name}?token={token(STATION)}"}
    icecast = Icecast(free_port()).start()
    agent = AgentProcess(STATION, base, tmp_path / "agent")
    try:
        wait_for(icecast.live, 20, "Icecast to serve the stream: " + icecast.log())
        first = datetime.now(UTC).astimezone(TZ).replace(microsecond=0) + timedelta(seconds=12)
        second = first + timedelta(seconds=25)
        _write_day(data_dir, first.date().isoformat(), [
            _relay_slot("r1", first, icecast.url, fallback),
            _relay_slot("r2", second, icecast.url, fallback),
        ])
        agent.start()
        wait_for(lambda: len(agent.wavs()) >= 1 and _events(config, "r1", "finished"), 40,
                 "the relay to air: " + agent.output())
        aired = seconds(agent.wavs()[0])
        assert abs(aired - RELAY_SECONDS) <= 0.5, aired
        icecast.stop()
        failed = wait_for(lambda: _events(config, "r2", "failed"), 40,
                          "the relay to fail with Icecast down: " + agent.output())
        assert failed[0]["item"] == "district-bulletin" and failed[0]["reason"]
        done = wait_for(lambda: _events(config, "r2", "finished"), 20, "the fallback to air")
        assert [r["item"] for r in done] == ["tiep-song-vov.vi"]
        wait_for(lambda: len(agent.wavs()) >= 2, 5, "the fallback's audio")
        assert abs(seconds(agent.wavs()[-1]) - clip.duration) <= 0.2
    finally:
        agent.stop()
        icecast.remove()


def _events(config: Path, slot: str, event: str) -> list[dict]:
    rows = json.loads(broadcaster(config, "asrun", "--format", "json").stdout)
    return [r for r in rows if r["slot"] == slot and r["event"] == event]
