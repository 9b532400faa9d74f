"""Claims in the dispatch table (SQLite and PostgreSQL), the miss policy, the task handler."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from broadcaster.daemon import CATCH_UP_LIMIT, catch_up_since
from broadcaster.dispatch import TaskHandler, is_missed, task_environment
from broadcaster.occurrence import Channel, Occurrence, Priority, Task
from broadcaster.store import dispatch as store

AT = datetime(2021, 9, 10, 23, 0, tzinfo=UTC)
EMPTY = Task()


def _occurrence(
    area: str, channel: Channel = Channel.TASK, content: Task = EMPTY, at: datetime = AT
) -> Occurrence:
    return Occurrence("p", channel, area, at, Priority.NORMAL, content, None, "5.1")


def test_an_occurrence_is_claimed_once_across_claimants(engine):
    batch = [_occurrence(f"{i:05d}") for i in range(2500)]  # more than one chunk
    first = store.claim(engine, batch, now=AT, node="a")
    second = store.claim(engine, batch[:10] + [_occurrence("99999")], now=AT, node="b")
    assert len(first) == 2500
    assert [c.occurrence.area for c in second] == ["99999"]
    assert store.counts(engine) == {"claimed": 2501}


def test_finish_and_release_move_only_what_they_name(engine):
    won = store.claim(
        engine, [_occurrence("1"), _occurrence("2"), _occurrence("3")], now=AT, node="a"
    )
    store.finish(engine, [won[0].id], store.DispatchState.FAILED, AT, "exit status 1")
    store.release(engine, [won[0].id, won[1].id])  # a finished row is not handed back
    assert {r.area: r.state for r in store.rows_for(engine)} == {"1": "failed", "3": "claimed"}
    assert store.claim(engine, [_occurrence("2")], now=AT, node="b")  # released: claimable


def test_adopting_skips_a_claim_its_claimant_finished_after_it_was_listed(engine):
    """A leader that lost its lock runs on until its next heartbeat and may finish a
    claim between the new leader's listing and its adoption: that one must not be
    returned for firing again (CI saw a tick run twice, attempts 1)."""
    won = store.claim(engine, [_occurrence("1"), _occurrence("2")], now=AT, node="old")
    listed = store.orphans(engine, "new")
    store.finish(engine, [won[0].id], store.DispatchState.DONE, AT)
    adopted = store.adopt(engine, [o.id for o in listed], node="new", now=AT)
    assert adopted == {won[1].id}
    rows = {r.area: (r.state, r.attempts, r.previous_node) for r in store.rows_for(engine)}
    assert rows == {"1": ("done", 1, None), "2": ("claimed", 2, "old")}


def test_sms_is_late_within_thirty_minutes_and_missed_after():
    grace = {Channel.SMS: timedelta(minutes=30)}
    sms = _occurrence("167", Channel.SMS)
    assert not is_missed(sms, AT + timedelta(minutes=29), grace)
    assert is_missed(sms, AT + timedelta(minutes=31), grace)
    assert is_missed(_occurrence("167", Channel.VAN), AT + timedelta(seconds=1), grace)


def test_task_handler_runs_commands_with_the_occurrence_in_the_environment(tmp_path: Path):
    ok = Task(command=("sh", "-c", 'echo "$BROADCASTER_AREA $BROADCASTER_AT" >> out.txt'))
    bad = Task(command=("sh", "-c", "echo nope >&2; exit 3"))
    handler = TaskHandler(tmp_path, timedelta(seconds=10))
    failures = handler([_occurrence("167", content=ok), _occurrence("168", content=bad)])
    assert (tmp_path / "out.txt").read_text() == f"167 {AT.isoformat()}\n"
    assert failures == {("p", "168", AT): "exit status 3: nope"}


def test_a_task_gets_the_occurrence_key_to_deduplicate_a_run_repeated_after_a_takeover(
    tmp_path: Path,
):
    seen: list[str | None] = []

    class Hook(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Broadcaster-Occurrence"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    command = Task(command=("sh", "-c", 'echo "$BROADCASTER_OCCURRENCE" >> keys.txt'))
    url = Task(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    handler = TaskHandler(tmp_path, timedelta(seconds=10))
    try:
        assert handler([_occurrence("167", content=command), _occurrence("168", content=url)]) == {}
    finally:
        server.shutdown()
    assert (tmp_path / "keys.txt").read_text() == f"p/167/{AT.isoformat()}\n"
    assert seen == [f"p/168/{AT.isoformat()}"]


def test_task_handler_gives_up_after_its_timeout(tmp_path: Path):
    slow = Task(command=("sh", "-c", "sleep 30"))
    failures = TaskHandler(tmp_path, timedelta(seconds=0.3))([_occurrence("1", content=slow)])
    assert list(failures.values()) == ["timed out after 0 s"]


def test_a_task_gets_only_what_its_programme_names_never_the_daemons_secrets(monkeypatch):
    monkeypatch.setenv("BROADCASTER_CARRIERS_VIETTEL_PASSWORD", "s3cret")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("UNRELATED", "x")
    task = Task(command=("env",), env=(("MAP_STYLE", "dark"),), pass_env=("HTTPS_PROXY",))
    env = task_environment(_occurrence("167", content=task), task, "/data", dict(os.environ))
    assert set(env) <= {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TZ",
        "MAP_STYLE",
        "HTTPS_PROXY",
        "BROADCASTER_PROGRAMME",
        "BROADCASTER_AREA",
        "BROADCASTER_AT",
        "BROADCASTER_OCCURRENCE",
        "BROADCASTER_DATA_DIR",
    }
    assert (env["MAP_STYLE"], env["HTTPS_PROXY"], env["BROADCASTER_AREA"]) == (
        "dark",
        "http://proxy:3128",
        "167",
    )
    assert "LANG" in env and "PATH" in env


def test_catch_up_re_offers_the_largest_grace_even_after_a_recent_heartbeat():
    grace = {
        Channel.SMS: timedelta(minutes=30),
        Channel.TASK: timedelta(hours=1),
        Channel.VAN: timedelta(minutes=15),
    }
    now = AT
    # the dead leader beat a second ago: an instant due before that may still be unclaimed
    assert catch_up_since(now, now - timedelta(seconds=1), grace) == now - timedelta(hours=1)
    assert catch_up_since(now, None, grace) == now - timedelta(hours=1)


def test_catch_up_after_a_long_outage_reaches_the_last_heartbeat_within_a_day():
    grace = {Channel.TASK: timedelta(hours=1)}
    assert catch_up_since(AT, AT - timedelta(hours=5), grace) == AT - timedelta(hours=5)
    assert catch_up_since(AT, AT - timedelta(days=3), grace) == AT - CATCH_UP_LIMIT
