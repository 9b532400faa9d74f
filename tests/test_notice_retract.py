"""A notice on the air is retracted by one operator and leaves every station's next poll."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine, select, text

from broadcaster.audio.tokens import Tokens
from broadcaster.store.audio import NoticeRow
from tests.audio_fixtures import SECRET, audio_config, seed_store
from tests.conftest import REPO, free_port
from tests.daemon_fixtures import broadcaster, config_factory, daemon_factory, wait_for

TOKENS = Tokens(SECRET.encode())
SAMPLES = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "schedules").glob("*.toml")}
TEXT = "Thông báo khẩn: mưa lũ, người dân không qua ngầm tràn."
AFFECTED = ("linh-thong", "lam-vy")


@pytest.fixture
def daemons():
    yield from daemon_factory()


@pytest.fixture
def daemon_with_web(tmp_path: Path, db_url: str, engine, normalised_store: Path, daemons):
    port = free_port()
    config = audio_config(config_factory(tmp_path, db_url)(SAMPLES), port, render_slots=False)
    with config.open("a", encoding="utf-8") as fh:
        fh.write("notice_requires_approval = true\n")
    seed_store(normalised_store, tmp_path / "data")
    daemons(config).start()
    return config, f"http://127.0.0.1:{port}"


def _get(base: str, station: str, path: str) -> httpx.Response:
    return httpx.get(
        f"{base}/stations/{station}/{path}", params={"token": TOKENS.for_station(station)}
    )


def _notice_urls(base: str, station: str) -> tuple[list[str], str]:
    """The notice items of the station's current manifest, and its current .m3u."""
    manifest = _get(base, station, "current.json")
    m3u = _get(base, station, "current.m3u")
    if manifest.status_code == 404:  # the notice had opened the only slot airing now
        return [], m3u.text
    items = manifest.json()["items"]
    return [i["url"] for i in items if (i.get("programme") or "").startswith("notice-")], m3u.text


def _day_programmes(base: str, station: str) -> list[str]:
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    day = _get(base, station, f"{today}.json").json()
    return [i.get("programme") or "" for slot in day["slots"] for i in slot["items"]]


def test_retracted_notice_leaves_both_stations_manifests_and_playlists_within_5s(
    daemon_with_web, engine: Engine, tmp_path: Path, people
) -> None:
    config, base = daemon_with_web
    wait_for(
        lambda: (
            _get(base, "linh-thong", "current.json").status_code in (200, 404)
            and _get(base, "cho-chu", "notices.json").status_code == 200
        ),
        30,
        "the daemon",
    )
    recorded = tmp_path / "thong-bao.wav"  # a minute long: still airing while we look
    subprocess.run(
        ["sox", "-n", "-r", "22050", str(recorded), "synth", "60", "sine", "440", "vol", "0.3"],
        check=True,
    )
    broadcaster(
        config,
        "notice",
        "--area",
        "05440",
        "--area",
        "05443",
        "--audio",
        str(recorded),
        "--by",
        "Nguyễn Văn A",
    )
    broadcaster(config, "notice", "approve", "1", *people.as_approver)
    on_air = {
        s: wait_for(lambda s=s: _notice_urls(base, s)[0], 10, f"the notice at {s}")
        for s in AFFECTED
    }
    for station, (url, *_) in on_air.items():
        assert url in _notice_urls(base, station)[1]
        assert "notice-1" in _day_programmes(base, station)

    started = time.monotonic()
    out = broadcaster(config, "notice", "retract", "1")
    gone: dict[str, datetime] = {}
    while time.monotonic() - started < 30 and len(gone) < len(AFFECTED):
        for station in AFFECTED:
            urls, m3u = _notice_urls(base, station)
            if (
                not urls
                and on_air[station][0] not in m3u
                and ("notice-1" not in _day_programmes(base, station))
            ):
                gone.setdefault(station, datetime.now(UTC))
        time.sleep(0.05)
    assert set(gone) == set(AFFECTED), f"still on the air 30 s after the command: {gone}"
    with engine.connect() as conn:
        retracted_at = conn.execute(select(NoticeRow.retracted_at)).scalar_one()
    after = {s: (at - retracted_at).total_seconds() for s, at in gone.items()}
    assert max(after.values()) <= 5, f"seconds from the retraction to its absence: {after}"
    assert "retracted by Nguyễn Văn A" in out.stdout

    notices = _get(base, "linh-thong", "notices.json").json()["notices"]
    assert [(n["id"], n["item"], n["state"]) for n in notices] == [(1, "notice-1", "retracted")]
    assert notices[0]["retracted_at"] is not None
    assert _get(base, "cho-chu", "notices.json").json()["notices"] == []
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT state, approved_by, retracted_by, retracted_at "
                "FROM audio_notices WHERE id = 1"
            )
        ).one()
    assert (row.state, row.approved_by, row.retracted_by) == (
        "retracted",
        "Trần Thị B",
        "Nguyễn Văn A",
    )
    assert row.retracted_at is not None


def test_retracting_needs_no_second_account_and_happens_once(daemon_with_web, people) -> None:
    config, base = daemon_with_web
    broadcaster(config, "notice", "--area", "05440", "--text", TEXT)
    broadcaster(config, "notice", "approve", "1", *people.as_approver)
    out = broadcaster(config, "notice", "retract", "1")  # the drafter may stop it
    assert "retracted by Nguyễn Văn A" in out.stdout
    again = broadcaster(config, "notice", "retract", "1", *people.as_approver, check=False)
    assert again.returncode == 1 and "already retracted by Nguyễn Văn A" in again.stderr
    unknown = broadcaster(config, "notice", "retract", "9", *people.as_approver, check=False)
    assert unknown.returncode == 1 and "no notice #9" in unknown.stderr
