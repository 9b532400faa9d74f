"""The daemon and two station agents as real processes, mpv decoding what they air."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from broadcaster.station.plan import item_id
from tests.account_fixtures import add_people
from tests.audio_fixtures import audio_config, seed_store
from tests.conftest import REPO, free_port
from tests.daemon_fixtures import (
    HCM,
    DaemonProcess,
    broadcaster,
    config_factory,
    daemon_factory,
    now,
    wait_for,
)
from tests.station_fixtures import AgentProcess, day_document, loudspeaker_schedule, seconds

# One district (daemon, agents, slot clock) serves every test here, in order, for minutes.
# Run first, its setup may also normalise the run's sample library: more than the
# default 300 s on a loaded machine.
pytestmark = [pytest.mark.long_running, pytest.mark.timeout(600)]

STATIONS = {"cho-chu": "05437", "linh-thong": "05440"}
LEAD = timedelta(seconds=35)  # daemon start, publication and the agents' first fetch fit in it
SLOT_GAP = timedelta(seconds=45)
LONG_SECONDS = 90  # the long item an emergency interrupts
LATE, OFFLINE = 4, 12  # the test config's [stations] thresholds, in seconds


class District:
    """A daemon on a test schedule, two agents, and the slot times."""

    def __init__(
        self,
        config: Path,
        base: str,
        daemon: DaemonProcess,
        agents: dict[str, AgentProcess],
        slots: list,
    ) -> None:
        self.config, self.base, self.daemon, self.agents, self.slots = (
            config,
            base,
            daemon,
            agents,
            slots,
        )

    def slot(self, station: str, n: int) -> dict:
        day = self.slots[n].astimezone(HCM).date().isoformat()
        doc = wait_for(lambda: day_document(self.base, station, day), 30, f"{station}'s day")
        starts = sorted(s["start"] for s in doc["slots"])
        wanted = self.slots[n].astimezone(HCM).isoformat(timespec="seconds")
        assert wanted in starts, (wanted, starts)
        return next(s for s in doc["slots"] if s["start"] == wanted)

    def asrun(self) -> list[dict]:
        return json.loads(broadcaster(self.config, "asrun", "--format", "json").stdout)


@pytest.fixture(scope="module")
def district(tmp_path_factory, normalised_store: Path) -> Iterator[District]:
    tmp = tmp_path_factory.mktemp("district")
    (tmp / "data").mkdir()
    library = tmp / "audio"
    shutil.copytree(REPO / "audio", library)
    long_talk = tmp / "long-talk.ogg"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=330:duration={LONG_SECONDS}",
            "-c:a",
            "libvorbis",
            str(long_talk),
        ],
        check=True,
    )
    config = config_factory(tmp, f"sqlite:///{tmp / 'data' / 'broadcaster.db'}")({})
    port = int(config.read_text().split('bind = "127.0.0.1:')[1].split('"')[0])
    audio_config(
        config, port, render_slots=False, library_dir=str(library), notice_requires_approval=True
    )
    body = config.read_text(encoding="utf-8")
    body = re.sub(r"(?m)^late_after = .*$", f'late_after = "{LATE}s"', body)
    body = re.sub(r"(?m)^offline_after = .*$", f'offline_after = "{OFFLINE}s"', body)
    # No SMSC here: carriers point at free ports, never at another test's SMSC on the fixed ones.
    body = re.sub(r"(?m)^port = 27\d\d$", lambda _: f"port = {free_port()}", body)
    config.write_text(body, encoding="utf-8")
    seed_store(normalised_store, tmp / "data")
    broadcaster(config, "db", "upgrade")
    people = add_people(f"sqlite:///{tmp / 'data' / 'broadcaster.db'}", config.parent)
    imported = broadcaster(
        config,
        "audio",
        "import",
        str(long_talk),
        "--title",
        "Nói chuyện dài",
        "--language",
        "vi",
        "--id",
        "long-talk",
    ).stdout
    assert "`broadcaster audio approve 1`" in imported, imported
    # a second account puts it on the air, republishing: that normalises the new clip
    # before the clock runs (minutes on a busy machine)
    subprocess.run(
        [sys.executable, "-m", "broadcaster", "--config", str(config), "audio", "approve", "1"]
        + list(people.as_approver),
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=600,
    )
    start = now() + LEAD
    slots = [start, start + SLOT_GAP, start + 2 * SLOT_GAP + timedelta(seconds=10)]
    schedule = loudspeaker_schedule(
        "agent-test", list(STATIONS.values()), slots[:2], ["gian-cach", "tiem-vac-xin"]
    )
    schedule += loudspeaker_schedule("long-talk", list(STATIONS.values()), slots[2:], ["long-talk"])
    (tmp / "schedules" / "agent.toml").write_text(schedule, encoding="utf-8")
    daemons = daemon_factory()
    make = next(daemons)
    daemon = make(config).start()
    base = f"http://127.0.0.1:{port}"
    agents = {s: AgentProcess(s, base, tmp / s).start() for s in STATIONS}
    try:
        yield District(config, base, daemon, agents, slots)
    finally:
        for agent in agents.values():
            agent.stop()
        daemon.kill()


def _finished(district: District, n: int) -> dict[str, list[str]]:
    """Items each station reported finished in slot `n`, in order."""
    rows = [r for r in district.asrun() if r["event"] == "finished"]
    return {
        station: [
            r["item"]
            for r in rows
            if r["station"] == station and r["slot"] == district.slot(station, n)["slot"]
        ]
        for station in district.agents
    }


def _planned(district: District, station: str, n: int) -> list[dict]:
    return [i for i in district.slot(station, n)["items"] if "url" in i]


def test_both_agents_air_every_item_of_the_slot_in_full_and_in_order(district: District) -> None:
    planned = {s: [item_id(i) for i in _planned(district, s, 0)] for s in district.agents}
    reported = wait_for(
        lambda: (got := _finished(district, 0)) == planned and got,
        LEAD.total_seconds() + 60,
        "both agents' finished reports of slot 1: "
        + "".join(a.output()[-1500:] for a in district.agents.values()),
    )
    assert reported == planned
    for station, agent in district.agents.items():
        expected = _planned(district, station, 0)
        wavs = agent.wavs()[: len(expected)]
        decoded = wait_for(
            lambda w=wavs: all(map(seconds, w)) and [seconds(x) for x in w],
            5,
            f"{station}'s audio files to be complete",
        )
        assert len(decoded) == len(expected) >= 3
        for got, item in zip(decoded, expected, strict=True):
            assert abs(got - item["duration"]) <= 0.2, (station, decoded, expected)


def test_agents_air_from_cache_while_the_centre_is_down_and_report_once_it_returns(
    district: District,
) -> None:
    planned = {s: [item_id(i) for i in _planned(district, s, 1)] for s in district.agents}
    slot = district.slot("cho-chu", 1)["slot"]
    assert now() < district.slots[1] - timedelta(seconds=3), "slot 1 ran late; no time to stop"
    district.daemon.terminate()
    for station, agent in district.agents.items():
        held = wait_for(
            lambda a=agent, s=station: (
                (
                    got := [
                        r["item"]
                        for r in a.queued_reports()
                        if r["event"] == "finished" and r["slot"] == slot
                    ]
                )
                == planned[s]
                and got
            ),
            SLOT_GAP.total_seconds() + 30,
            f"{station} to air slot 2 with the centre down",
        )
        assert held == planned[station]
    district.daemon.messages.clear()  # await this start's READY=1, not the first one's
    district.daemon.start()
    reported = wait_for(
        lambda: (got := _finished(district, 1)) == planned and got,
        30,
        "slot 2's reports after the centre came back",
    )
    assert reported == planned
    rows = [r for r in district.asrun() if r["slot"] == slot]
    counts = Counter((r["station"], r["item"], r["event"]) for r in rows)
    assert set(counts.values()) == {1}, counts
    for station, agent in district.agents.items():
        wait_for(lambda a=agent: not a.queued_reports(), 15, f"{station}'s outbox to empty")


def test_a_killed_agent_is_late_then_offline_within_the_thresholds(district: District) -> None:
    agent = district.agents["cho-chu"]
    wait_for(lambda: _state(district, "cho-chu") == "online", 10, "cho-chu online")
    agent.stop(signal.SIGKILL)
    killed = time.monotonic()
    seen: list[tuple[float, float, str]] = []  # (asked, answered, state) after the kill
    while not seen or seen[-1][2] != "offline":
        asked = time.monotonic() - killed
        state = _state(district, "cho-chu")
        seen.append((asked, time.monotonic() - killed, state))
        assert asked < OFFLINE + 15, seen
    beat = 1.0  # the agents' heartbeat interval: the last beat may precede the kill by this
    assert all(state == "online" for _, answered, state in seen if answered < LATE - beat), seen
    assert all(state != "online" for asked, _, state in seen if asked > LATE + beat), seen
    assert all(state == "offline" for asked, _, state in seen if asked > OFFLINE + beat), seen
    assert all(state != "offline" for _, answered, state in seen if answered < OFFLINE - beat), seen
    assert "late" in {state for _, _, state in seen}, seen
    assert _state(district, "linh-thong") == "online"


def _state(district: District, station: str) -> str:
    rows = json.loads(broadcaster(district.config, "stations", "--format", "json").stdout)
    return next(r["state"] for r in rows if r["station"] == station)


def test_an_emergency_interrupts_a_long_item_within_ten_seconds(district: District) -> None:
    drafted = broadcaster(
        district.config,
        "notice",
        "--area",
        "05440",
        "--text",
        "Thông báo khẩn: thử nghiệm",
    ).stdout  # as the operator mapped to this Unix login
    notice_id = drafted.split("#")[1].split()[0]
    wait_for(
        lambda: any(
            r["item"] == "long-talk.vi" and r["event"] == "started" and r["station"] == "linh-thong"
            for r in district.asrun()
        ),
        (district.slots[2] - now()).total_seconds() + 30,
        "the long item to start",
    )
    approved = now()  # just before: the delay measured is an upper bound
    approver = district.config.parent / "approver.token"  # a second account
    broadcaster(district.config, "notice", "approve", notice_id, "--token-file", str(approver))
    notice_item = f"notice-{notice_id}.vi"
    heard = wait_for(
        lambda: next(
            (r for r in district.asrun() if r["item"] == notice_item and r["event"] == "started"),
            None,
        ),
        20,
        "the notice on the air",
    )
    delay = (datetime.fromisoformat(heard["started"]) - approved).total_seconds()
    assert delay <= 10, delay
    events = [(r["item"], r["event"]) for r in district.asrun() if r["station"] == "linh-thong"]
    assert ("long-talk.vi", "interrupted") in events
    resumed = wait_for(
        lambda: [
            r
            for r in district.asrun()
            if (r["station"], r["item"], r["event"]) == ("linh-thong", "long-talk.vi", "finished")
        ],
        LONG_SECONDS + 20,
        "the interrupted long item to resume and end at linh-thong",
    )
    assert len(resumed) == 1


def test_the_daily_report_shows_the_gaps_of_the_station_that_was_down(district: District) -> None:
    day = district.slots[2].astimezone(HCM).date().isoformat()
    gaps = json.loads(
        broadcaster(district.config, "asrun", "--gaps", day, "--format", "json").stdout
    )
    assert [g["item"] for g in gaps["cho-chu"]["gaps"] if g["programme"] == "long-talk"] == [
        "long-talk.vi"
    ]
    assert not [g for g in gaps["linh-thong"]["gaps"] if g["programme"] == "agent-test"]
    report = json.loads(
        broadcaster(district.config, "report", "daily", "--date", day, "--format", "json").stdout
    )
    communes = {c["station"]: c for c in report["communes"]}
    down = {p["programme"]: p for p in communes["cho-chu"]["programmes"]}
    assert down["long-talk"] == {"programme": "long-talk", "planned": 1, "aired": 0, "missed": 1}
    assert down["agent-test"]["missed"] == 0
    assert any(g["item"] == "long-talk.vi" for g in communes["cho-chu"]["gaps"])
    assert communes["cho-chu"]["offline"], communes["cho-chu"]
    html = broadcaster(district.config, "report", "daily", "--date", day, "--format", "html").stdout
    assert "Phát thanh theo xã" in html and "Đài mất liên lạc" in html
