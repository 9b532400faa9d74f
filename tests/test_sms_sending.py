"""Senders against a real SMPP server (smpp34's, behind our fault injection) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import smpp34
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from broadcaster.sms.link import utcnow
from broadcaster.sms.outbox import Outbox
from broadcaster.sms.outcomes import Outcomes
from broadcaster.sms.receipts import normalise_id
from broadcaster.sms.sender import UNMATCHED_RETRY, CarrierSender, bind_configs, run_senders
from broadcaster.sms.states import Priority
from broadcaster.testing.faults import WireFaults
from broadcaster.testing.smsc import SmscPolicy, SmscThread, TestSmsc, free_port
from tests.sms_fixtures import (
    NOW,
    THANH_HOA,
    counts,
    reassemble,
    seed_subscribers,
    settings_for,
    start_blast,
    write_config,
)

REPO = Path(__file__).resolve().parent.parent


def send_all(settings, engine: Engine, receipt_wait: float = 10.0, clock=utcnow) -> None:
    run_senders(
        settings, engine, threading.Event(), drain=True, receipt_wait=receipt_wait, clock=clock
    )


def at_local(hour: int, tz) -> callable:
    """Return a running clock shifted so the local time starts at the given hour."""
    real = utcnow()
    local = real.astimezone(tz)
    shift = local.replace(hour=hour, minute=0) - local
    return lambda: utcnow() + shift


def test_ten_thousand_thanh_hoa_blast_is_30000_submits_all_delivered(tmp_path, db_url, engine):
    smsc = TestSmsc(free_port())
    settings = settings_for(write_config(tmp_path, db_url, {"viettel": smsc.port}))
    numbers = seed_subscribers(engine, 10_000)
    blast_id = start_blast(engine, settings, THANH_HOA)
    with SmscThread([smsc]):
        send_all(settings, engine)
    accepted = smsc.stats.accepted
    assert len(accepted) == 30_000
    received = reassemble(accepted)
    assert sorted(received) == sorted(numbers)
    assert all(texts == [THANH_HOA] for texts in received.values())
    assert {s.data_coding for s in accepted} == {0x08}
    assert counts(engine, blast_id) == {"delivered": 10_000}


def test_throttled_and_queue_full_submits_are_retried_later(tmp_path, db_url, engine):
    smsc = TestSmsc(free_port(), SmscPolicy(throttle_every=7, queue_full_every=11))
    settings = settings_for(write_config(tmp_path, db_url, {"viettel": smsc.port}))
    numbers = seed_subscribers(engine, 600)
    blast_id = start_blast(engine, settings, "Khuyen cao: han che ra ngoai.")
    with SmscThread([smsc]):
        send_all(settings, engine)
    assert smsc.stats.rejected[0x58] > 0 and smsc.stats.rejected[0x14] > 0
    assert sorted(s.destination_addr for s in smsc.stats.accepted) == sorted(numbers)
    assert counts(engine, blast_id) == {"delivered": 600}


def test_other_error_status_fails_the_message_with_the_status(tmp_path, db_url, engine):
    smsc = TestSmsc(free_port(), SmscPolicy(reject_every=5, reject_status=0x0B))
    settings = settings_for(write_config(tmp_path, db_url, {"viettel": smsc.port}))
    seed_subscribers(engine, 100)
    blast_id = start_blast(engine, settings, "Thong bao.")
    with SmscThread([smsc]):
        send_all(settings, engine)
    assert counts(engine, blast_id) == {"delivered": 80, "failed": 20}
    with engine.connect() as conn:
        failed = conn.execute(
            text("SELECT DISTINCT status, reason FROM sms_messages WHERE state = 'failed'")
        ).all()
    assert len(failed) == 1 and failed[0].status == 0x0B
    assert "0x0000000b" in failed[0].reason


def test_undeliverable_receipt_fails_the_message(tmp_path, db_url, engine):
    smsc = TestSmsc(
        free_port(), SmscPolicy(undeliverable_every=4, receipt_tlv=False, receipt_id_decimal=True)
    )
    settings = settings_for(write_config(tmp_path, db_url, {"viettel": smsc.port}))
    seed_subscribers(engine, 100)
    blast_id = start_blast(engine, settings, "Thong bao.")
    with SmscThread([smsc]):
        send_all(settings, engine)
    assert counts(engine, blast_id) == {"delivered": 75, "failed": 25}
    with engine.connect() as conn:
        reasons = (
            conn.execute(text("SELECT DISTINCT reason FROM sms_messages WHERE state = 'failed'"))
            .scalars()
            .all()
        )
    assert reasons == ["receipt stat:UNDELIV err:001"]


def test_dropped_link_reconnects_and_finishes_with_nothing_lost(tmp_path, db_url, engine):
    smsc = TestSmsc(free_port(), SmscPolicy(wire=WireFaults(drop_after=400), delay=0.002))
    settings = settings_for(write_config(tmp_path, db_url, {"viettel": smsc.port}))
    numbers = seed_subscribers(engine, 1000)
    blast_id = start_blast(engine, settings, THANH_HOA)
    with SmscThread([smsc]):
        send_all(settings, engine)
    assert smsc.wire_stats.drops >= 5 and smsc.stats.binds >= 6
    received = reassemble(smsc.stats.accepted)
    assert sorted(received) == sorted(numbers)
    assert all(set(texts) == {THANH_HOA} for texts in received.values())
    assert counts(engine, blast_id) == {"delivered": 1000}


def test_urgent_blast_goes_before_routine_and_routine_waits_out_quiet_hours(
    tmp_path, db_url, engine
):
    smsc = TestSmsc(free_port())
    settings = settings_for(
        write_config(tmp_path, db_url, {"viettel": smsc.port}, sms='quiet_hours = "21:00-06:00"')
    )
    seed_subscribers(engine, 50)
    routine = start_blast(engine, settings, "Routine.", priority=Priority.ROUTINE)
    urgent = start_blast(engine, settings, "URGENT.", priority=Priority.URGENT)
    with SmscThread([smsc]):
        send_all(settings, engine, clock=at_local(23, settings.tz))
    assert {s.short_message for s in smsc.stats.accepted} == {b"URGENT."}
    assert counts(engine, urgent) == {"delivered": 50}
    assert counts(engine, routine) == {"queued": 50}


def test_kill_9_mid_blast_then_restart_loses_nothing_and_duplicates_at_most_a_window(
    tmp_path, db_url, engine
):
    smsc = TestSmsc(free_port(), SmscPolicy(delay=0.01))
    window = 50
    config = write_config(
        tmp_path, db_url, {"viettel": smsc.port}, rate=2000, window=window, sms="lease_seconds = 1"
    )
    settings = settings_for(config)
    numbers = seed_subscribers(engine, 3000)
    blast_id = start_blast(engine, settings, "Thong bao khan.")
    env = {**os.environ, "BROADCASTER_CONFIG": str(config)}
    command = [sys.executable, "-m", "broadcaster", "sms", "send", "--receipt-wait", "10"]
    with SmscThread([smsc]):
        first = subprocess.Popen(command, env=env, cwd=REPO)
        assert smsc.wait_for(lambda st: len(st.accepted) >= 1000, 60)
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = subprocess.run(command, env=env, cwd=REPO, timeout=120)
        assert second.returncode == 0
    dests = [s.destination_addr for s in smsc.stats.accepted]
    assert set(dests) == set(numbers)
    assert len(dests) - len(set(dests)) <= window
    assert counts(engine, blast_id) == {"delivered": 3000}


def _submit_as_another_node(port: int, msisdn: str) -> str:
    """Bind the carrier's account from another process's point of view, submit one
    message asking for a receipt, and leave; return the SMSC's message id."""

    async def submit() -> str:
        smsc = await smpp34.Client("127.0.0.1", port, "viettel", "test").connect()
        response = await smsc.submit_sm(msisdn, b"Thong bao khan.", registered_delivery=1)
        await smsc.unbind()
        return str(response.message_id)

    return asyncio.run(submit())


def test_a_receipt_for_another_nodes_part_not_yet_recorded_is_answered_once_it_matches(
    tmp_path, db_url, engine
):
    """Answered before its part exists, a receipt dies with the node that holds it in memory."""
    smsc = TestSmsc(free_port())
    config = write_config(tmp_path, db_url, {"viettel": smsc.port})
    settings = settings_for(config)
    [msisdn] = seed_subscribers(engine, 1)
    blast_id = start_blast(engine, settings, "Thong bao khan.")
    with engine.begin() as conn:  # the other node holds the message under its lease
        conn.execute(
            text(
                "UPDATE sms_messages SET state = 'sending', lease_owner = 'other-node', "
                "lease_until = :until"
            ),
            {"until": utcnow() + timedelta(hours=1)},
        )
    stop = threading.Event()
    with SmscThread([smsc]):
        sender = CarrierSender(bind_configs(settings)[0], engine, settings.sms, settings.tz, stop)
        sender.start()
        assert smsc.wait_for(lambda st: st.binds == 1, 10)  # first bound: receipts come here
        smsc_id = _submit_as_another_node(smsc.port, msisdn)
        time.sleep(2 * UNMATCHED_RETRY)
        answered_early = smsc.stats.receipts_sent
        with engine.begin() as conn:  # the other node commits its submission at last
            message = conn.execute(text("SELECT id FROM sms_messages")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO sms_parts (message_id, seq, carrier, smsc_id, submitted_at) "
                    "VALUES (:m, 1, 'viettel', :sid, :at)"
                ),
                {"m": message, "sid": normalise_id(smsc_id), "at": utcnow()},
            )
            conn.execute(
                text(
                    "UPDATE sms_messages SET state = 'submitted', submitted_at = :at, "
                    "lease_owner = NULL, lease_until = NULL"
                ),
                {"at": utcnow()},
            )
        assert smsc.wait_for(lambda st: st.receipts_sent == 1, 10)
        stop.set()
        sender.join(10)
    assert answered_early == 0
    assert counts(engine, blast_id) == {"delivered": 1}


def _steal_lapsed_leases(engine: Engine, lease: float) -> set[str] | None:
    """Take every lapsed `sending` lease as another sender would; None when a frozen
    process holds a lock the theft needs (SQLite's write lock, PostgreSQL row locks):
    waiting would only wait for the freeze."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        kept = conn.exec_driver_sql("PRAGMA busy_timeout").scalar() if sqlite else None
        conn.rollback()
        try:
            with conn.begin():
                conn.exec_driver_sql(
                    "PRAGMA busy_timeout = 300" if sqlite else "SET LOCAL lock_timeout = '300ms'"
                )
                return set(
                    conn.execute(
                        text(
                            "UPDATE sms_messages SET lease_owner = 'thief', lease_until = :until "
                            "WHERE state = 'sending' AND lease_until < :now RETURNING msisdn"
                        ),
                        {"now": utcnow(), "until": utcnow() + timedelta(seconds=lease)},
                    ).scalars()
                )
        except OperationalError:
            return None
        finally:
            if sqlite:  # the pooled connection goes back with its usual patience
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(kept)}")


def test_a_stalled_sender_submits_none_of_the_messages_whose_lease_another_took(
    tmp_path, db_url, engine
):
    """Stopped past its lease, a sender must ask what it still holds before writing more."""
    smsc = TestSmsc(free_port())
    config = write_config(
        tmp_path, db_url, {"viettel": smsc.port}, rate=20, window=5, sms="lease_seconds = 1"
    )
    settings = settings_for(config)
    numbers = seed_subscribers(engine, 120)
    blast_id = start_blast(engine, settings, "Thong bao khan.")
    env = {**os.environ, "BROADCASTER_CONFIG": str(config)}
    command = [sys.executable, "-m", "broadcaster", "sms", "send", "--receipt-wait", "10"]
    thief_lease = 4.0
    with SmscThread([smsc]):
        sender = subprocess.Popen(command, env=env, cwd=REPO, stderr=subprocess.DEVNULL)
        assert smsc.wait_for(lambda st: len(st.accepted) >= 20, 30)
        for _ in range(5):
            sender.send_signal(signal.SIGSTOP)
            time.sleep(0.5)  # what it wrote before the stop has reached the SMSC
            seen = {s.destination_addr for s in smsc.stats.accepted}
            time.sleep(1.5)  # past its 1 s lease: another sender may take its messages
            stolen = _steal_lapsed_leases(engine, thief_lease)
            if stolen is not None:
                break
            sender.send_signal(signal.SIGCONT)  # frozen inside a write: let it finish
            time.sleep(0.3)
        else:
            pytest.fail("the sender froze inside a database write five times running")
        stolen_at = time.monotonic()
        unsent = stolen - seen
        sender.send_signal(signal.SIGCONT)
        time.sleep(thief_lease - 1 - (time.monotonic() - stolen_at))
        during_theft = [s.destination_addr for s in smsc.stats.accepted]
        assert sender.wait(120) == 0  # the thief's lease lapses: they return and go once
    assert unsent
    assert len(during_theft) > len(seen)  # the sender went on with what it still held
    assert unsent.isdisjoint(during_theft)
    dests = [s.destination_addr for s in smsc.stats.accepted]
    assert set(dests) == set(numbers)
    assert all(dests.count(msisdn) == 1 for msisdn in unsent)
    assert counts(engine, blast_id) == {"delivered": 120}
    [lost] = [
        json.loads(line)
        for line in settings.log_file.read_text().splitlines()
        if '"sms.lease_lost"' in line
    ]
    print(
        f"\nstalled sender: {len(stolen)} leases taken, {len(unsent)} of them unsent; "
        f"it dropped {lost['messages']}, sent {len(during_theft) - len(seen)} others meanwhile"
    )
    assert len(unsent) <= lost["messages"] <= len(stolen)  # and any still in flight


def test_a_sender_whose_lease_lapsed_and_was_taken_writes_no_outcome_over_the_new_owner(
    tmp_path, db_url, engine
):
    config = write_config(tmp_path, db_url, {"viettel": free_port()})
    settings = settings_for(config)
    seed_subscribers(engine, 3)
    blast_id = start_blast(engine, settings, "Thong bao khan.")
    lease = timedelta(seconds=60)
    stalled, taker = Outbox(engine, "viettel", "stalled"), Outbox(engine, "viettel", "taker")
    held = stalled.claim(NOW, 3, lease, routine_allowed=True)
    taken = taker.claim(NOW + 2 * lease, 2, lease, routine_allowed=True)  # two lapsed, taken
    assert {c.id for c in taken} < {c.id for c in held}
    assert stalled.renew(NOW + 2 * lease, lease) == set()  # the third went back to the queue
    stalled.record(
        Outcomes(submitted=[taken[0].id], failed=[(taken[1].id, 8, "ESME_RSYSERR")]), NOW
    )
    assert counts(engine, blast_id) == {"sending": 2, "queued": 1}
    with engine.connect() as conn:
        owners = conn.execute(
            text("SELECT lease_owner FROM sms_messages WHERE state = 'sending'")
        ).scalars()
        assert list(owners) == ["taker", "taker"]
    for outbox in (stalled, taker):
        outbox.close()
