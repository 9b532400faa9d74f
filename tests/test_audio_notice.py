"""Emergency notices reach the affected stations' current playlists at once, and only theirs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from broadcaster.audio.library import probe_duration
from broadcaster.audio.notice import MAX_TEXT, notice_audio, speak
from broadcaster.audio.tokens import Tokens
from broadcaster.config import load_settings
from broadcaster.store.audio import list_notices
from broadcaster.store.db import make_engine
from tests.audio_fixtures import (
    SECRET,
    day_plan,
    publish_plan,
)

TOKENS = Tokens(SECRET.encode())
TEXT = "Thông báo khẩn: mưa lũ, người dân không qua ngầm tràn."


def _broadcaster(config: Path, *args: str, expect: int = 0) -> str:
    env = {**os.environ, "BROADCASTER_CONFIG": str(config)}
    done = subprocess.run(
        [sys.executable, "-m", "broadcaster", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == expect, done.stdout + done.stderr
    return done.stdout + done.stderr


def _current(base: str, station: str) -> dict:
    response = httpx.get(
        f"{base}/stations/{station}/current.json", params={"token": TOKENS.for_station(station)}
    )
    assert response.status_code == 200, response.text
    return response.json()


def _has_notice(manifest: dict) -> bool:
    return any((item.get("programme") or "").startswith("notice-") for item in manifest["items"])


def test_notice_heads_affected_current_playlists_within_5s_and_no_other(served, people):
    """Timed from the notice's record (it is issued: spoken and stored) to the moment a
    station's player reading current.json sees it: normalising and republishing are in
    the 5 s, the CLI's interpreter start-up and the speech synthesis before it are not."""
    config, base = served
    with config.open("a", encoding="utf-8") as fh:
        fh.write("notice_requires_approval = false\n")  # the default follows the SMS rule
    now = datetime.now(UTC)
    publish_plan(config, day_plan(now - timedelta(seconds=5)), now)
    before = {s: _current(base, s) for s in ("linh-thong", "lam-vy", "cho-chu")}
    env = {**os.environ, "BROADCASTER_CONFIG": str(config)}
    command = [sys.executable, "-m", "broadcaster", "notice", "--area", "05440"]
    issuing = subprocess.Popen(
        [*command, "--area", "05443", "--text", TEXT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    heads: dict[str, dict] = {}
    seen: dict[str, datetime] = {}
    deadline = time.monotonic() + 60
    while len(heads) < 2 and time.monotonic() < deadline:
        for station in {"linh-thong", "lam-vy"} - set(heads):
            manifest = _current(base, station)
            if _has_notice(manifest):
                heads[station], seen[station] = manifest, datetime.now(UTC)
        if issuing.poll() not in (None, 0):
            break
        time.sleep(0.05)
    output = issuing.communicate(timeout=60)[0].decode(errors="replace")
    assert issuing.returncode == 0, output
    assert set(heads) == {"linh-thong", "lam-vy"}, f"never on the air: {heads.keys()}"
    engine = make_engine(load_settings(config).storage_url)
    try:
        (notice,) = list_notices(engine)
    finally:
        engine.dispose()
    delays = {station: (at - notice.created_at).total_seconds() for station, at in seen.items()}
    assert all(delay <= 5 for delay in delays.values()), f"not within 5 s: {delays}"
    for manifest in heads.values():
        kinds = [(i["kind"], i["priority"]) for i in manifest["items"][:2]]
        assert kinds == [("chime", "emergency"), ("clip", "emergency")]
        assert manifest["items"][1]["programme"].startswith("notice-")
        m3u = httpx.get(manifest["playlist_url"]).text
        assert manifest["items"][1]["url"] in m3u.splitlines()[4]
    assert _current(base, "cho-chu") == before["cho-chu"]


def test_notice_needing_approval_airs_only_after_a_second_account(served, people):
    config, base = served
    with config.open("a", encoding="utf-8") as fh:
        fh.write("notice_requires_approval = true\n")
    now = datetime.now(UTC)
    publish_plan(config, day_plan(now - timedelta(seconds=5)), now)
    out = _broadcaster(config, "notice", "--area", "05440", "--text", TEXT)
    assert "second account" in out
    assert not _has_notice(_current(base, "linh-thong"))
    refused = _broadcaster(config, "notice", "approve", "1", expect=1)
    assert "approver" in refused  # the operator's own account may not approve
    _broadcaster(config, "notice", "approve", "1", *people.as_approver)
    assert _has_notice(_current(base, "linh-thong"))
    assert not _has_notice(_current(base, "lam-vy"))


def test_notice_needs_text_or_audio_and_a_known_area(served, people):
    config, _ = served
    assert "exactly one of" in _broadcaster(config, "notice", "--area", "05440", expect=1)
    assert "unknown area" in _broadcaster(
        config, "notice", "--area", "99999", "--text", "x", expect=1
    )


def test_text_that_looks_like_an_espeak_option_is_spoken_not_obeyed(tmp_path: Path):
    secret = tmp_path / "hostname"
    secret.write_text("Xin chào bà con. " * 100, encoding="utf-8")
    hostile = f"-f{secret}"
    spoken = probe_duration(notice_audio(tmp_path / "data", audio=None, text=hostile))
    speak(secret.read_text(encoding="utf-8"), tmp_path / "file-read-aloud.wav")
    read_aloud = probe_duration(tmp_path / "file-read-aloud.wav")
    assert read_aloud > 45  # what obeying `-f` would have aired
    # Speaking the path's name takes ~1 s per 10 characters, and pytest's tmp paths grow
    # (an xdist worker adds popen-gwN/): compare with the file, not a fixed length.
    assert spoken < read_aloud / 3, (
        f"{spoken:.1f} s of {read_aloud:.1f} s: espeak-ng read {secret} instead of its name"
    )


def test_notice_text_is_bounded(tmp_path: Path):
    with pytest.raises(ValueError, match=f"at most {MAX_TEXT}"):
        notice_audio(tmp_path, audio=None, text="a" * (MAX_TEXT + 1))
