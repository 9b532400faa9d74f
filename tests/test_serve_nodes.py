"""Every node serves stations the same bytes: real daemons, each with its own data_dir,
on one PostgreSQL; a station fetching from the node that does not publish."""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine

from broadcaster.audio.tokens import Tokens, load_tokens
from broadcaster.store import dispatch as store
from tests.account_fixtures import add_people
from tests.audio_fixtures import SECRET, audio_config, mpv_decoded_seconds, seed_store
from tests.conftest import REPO, free_port
from tests.daemon_fixtures import (
    broadcaster,
    config_factory,
    daemon_factory,
    node_env,
    wait_for,
)

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
SAMPLES = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "schedules").glob("*.toml")}
STATION = "linh-thong"
TOKEN = Tokens(SECRET.encode()).for_station(STATION)
# Headers that must match byte for byte whichever node answers.
SAME = ("etag", "content-type", "content-length", "cache-control", "last-modified")


@pytest.fixture
def daemons():
    yield from daemon_factory()


def _get(base: str, path: str) -> httpx.Response:
    return httpx.get(f"{base}{path}", params={"token": TOKEN}, timeout=10)


def _same(path: str, *bases: str) -> httpx.Response:
    """Fetch `path` from every node; assert the status, bytes and headers agree."""
    answers = [_get(b, path) for b in bases]
    first = answers[0]
    assert first.status_code == 200, (path, first.status_code, first.text[:200])
    for other in answers[1:]:
        assert other.status_code == 200 and other.content == first.content, path
        assert {h: other.headers.get(h) for h in SAME} == {h: first.headers.get(h) for h in SAME}
    return first


def _today() -> str:
    return datetime.now(UTC).astimezone(HCM).date().isoformat()


def _scheduler_pid(engine: Engine) -> int | None:
    row = store.read_status(engine)
    return row.pid if row is not None and row.stopped_at is None else None


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_station_gets_the_same_bytes_from_every_node_before_and_after_the_leader_dies(
    tmp_path: Path, db_url: str, engine: Engine, normalised_store: Path, daemons
) -> None:
    leader_port, peer_port = free_port(), free_port()
    # The public URL is the peer's (think of it as the balancer's): every item URL leads a
    # player there, and it is the same in every node's config.
    config = audio_config(
        config_factory(tmp_path, db_url)(SAMPLES),
        peer_port,
        render_slots=False,
        notice_requires_approval=False,
    )
    seed_store(normalised_store, tmp_path / "node-a")  # the leader rendered before; the peer not
    leader = daemons(config)
    leader.env = node_env("node-a", leader_port, tmp_path / "node-a")
    leader.start()
    peer = daemons(config)
    peer.env = node_env("node-b", peer_port, tmp_path / "node-b")
    peer.start()
    assert _scheduler_pid(engine) == leader.process.pid
    a, b = f"http://127.0.0.1:{leader_port}", f"http://127.0.0.1:{peer_port}"
    day_path = f"/stations/{STATION}/{_today()}.json"
    wait_for(lambda: _get(b, day_path).status_code == 200, 60, "the day on the peer")

    day = _same(day_path, a, b)
    slot = next(  # a slot of clips: a relay's item is the stream's own URL
        s for s in day.json()["slots"] if all(i["kind"] != "relay" for i in s["items"])
    )
    playlist = _same(f"/stations/{STATION}/{_today()}/{slot['slot']}.m3u", a, b)
    _same(f"/stations/{STATION}/{_today()}/{slot['slot']}.json", a, b)
    urls = [line for line in playlist.text.splitlines() if line.startswith("http")]
    assert urls and all(u.startswith(f"{b}/stations/{STATION}/audio/") for u in urls)
    peer_cache = tmp_path / "node-b" / "publish" / "audio"
    first_audio = re.search(r"/audio/([0-9a-f]{64})\.mp3", urls[0])
    assert first_audio is not None
    assert not (peer_cache / f"{first_audio.group(1)}.mp3").exists()  # only in the database
    for url in urls:
        path = url.removeprefix(b).split("?")[0]
        audio = _same(path, a, b)
        assert audio.headers["etag"] == f'"{path.rsplit("/", 1)[1].removesuffix(".mp3")}"'
    assert (peer_cache / f"{first_audio.group(1)}.mp3").exists()  # now cached by hash
    decoded = mpv_decoded_seconds(str(playlist.url), tmp_path / "mpv")
    assert len(decoded) == len(urls) and all(s > 0.5 for s in decoded)

    # A notice drafted from a third place (the CLI, a data_dir of its own) reaches every node,
    # and ends a station's long-poll held by the node that does not publish.
    people = add_people(db_url, tmp_path)
    held = ThreadPoolExecutor(1).submit(
        httpx.get,
        f"{b}{day_path}",
        params={"token": TOKEN, "wait": "50"},
        headers={"If-None-Match": day.headers["etag"]},
        timeout=60,
    )
    cli_env = node_env("node-c", free_port(), tmp_path / "node-c")
    drafted = broadcaster(
        config, "notice", "--area", "05440", "--text", "Thông báo khẩn", env=cli_env
    ).stdout
    notice = f"notice-{drafted.split('#')[1].split()[0]}"

    def noticed(base: str) -> bool:
        doc = _get(base, day_path).json()
        return any(i.get("programme") == notice for s in doc["slots"] for i in s["items"])

    wait_for(lambda: noticed(a) and noticed(b), 30, "the notice on both nodes")
    assert held.result(30).content == _same(day_path, a, b).content

    # A clip replaced from a third node's own library folder airs from every node; the peer,
    # whose folder still holds the old recording, airs the new one after it takes over.
    old = next(i for s in day.json()["slots"] for i in s["items"] if i["kind"] == "clip")
    folder = tmp_path / "node-c-audio"
    shutil.copytree(REPO / "audio", folder)
    tone = tmp_path / "replacement.wav"
    subprocess.run(
        ["sox", "-n", "-r", "22050", "-c", "1", str(tone), "synth", "6", "sine", "440"], check=True
    )
    imported = broadcaster(
        config,
        *("audio", "import", str(tone), "--id", old["clip"], "--language", old["language"]),
        *("--title", "Bản tin thay thế", "--replace"),
        env=cli_env | {"BROADCASTER_AUDIO_LIBRARY_DIR": str(folder)},
    ).stdout
    version = re.search(r"clip version #(\d+)", imported)
    assert version is not None, imported
    broadcaster(config, "audio", "approve", version.group(1), *people.as_approver, env=cli_env)

    def replaced(base: str) -> list[dict[str, str]]:
        doc = _get(base, day_path).json()
        return [i for s in doc["slots"] for i in s["items"] if i.get("clip") == old["clip"]]

    wait_for(
        lambda: all(i["title"] == "Bản tin thay thế" for i in replaced(a) + replaced(b)),
        60,
        "the replaced clip in both nodes' days",
    )
    before = _same(day_path, a, b)
    new = replaced(b)[0]
    assert new["sha256"] != old["sha256"]
    heard = mpv_decoded_seconds(new["url"], tmp_path / "mpv-new", playlist=False)
    assert heard == [pytest.approx(6.0, abs=0.3)]  # the 6 s replacement, not the old words

    leader.process.kill()
    leader.process.wait(5)
    wait_for(lambda: _scheduler_pid(engine) == peer.process.pid, 15, "the peer to take over")
    wait_for(
        lambda: "audio.plan_published" in peer.stderr_path.read_text(), 30, "the peer to publish"
    )
    after = _get(b, day_path)
    assert after.content == before.content and after.headers["etag"] == before.headers["etag"]
    assert peer.terminate() == 0


def test_nodes_without_a_configured_secret_share_the_database_one_and_keep_an_old_file(
    tmp_path: Path, engine: Engine
) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "station-token-secret").write_text("a-secret-an-older-version-made\n")
    first = load_tokens(None, old, engine)
    second = load_tokens(None, tmp_path / "elsewhere", engine)
    assert first.for_station(STATION) == second.for_station(STATION)
    assert first.for_station(STATION) == Tokens(b"a-secret-an-older-version-made").for_station(
        STATION
    )
    assert not (tmp_path / "elsewhere").exists()
