"""A correction reaches exactly those the first blast may have reached, after a second
operator approves it, against the real test SMSC over TCP."""

from __future__ import annotations

import json
import threading
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text

from broadcaster.cli import main
from broadcaster.sms import blast as blasts
from broadcaster.sms.blast import BlastError
from broadcaster.sms.correction import draft_correction
from broadcaster.sms.link import utcnow
from broadcaster.sms.sender import run_senders
from broadcaster.sms.states import Priority
from broadcaster.testing.smsc import SmscPolicy, SmscThread, TestSmsc, free_port
from tests.sms_fixtures import (
    NOW,
    reassemble,
    router_of,
    seed_subscribers,
    settings_for,
    start_blast,
    write_config,
)

WRONG = "Canh bao: nuoc lu tren song Cho Chu dat dinh luc 14h hom nay."
RIGHT = "Dinh chinh: nuoc lu song Cho Chu dat dinh luc 16h, khong phai 14h."


def _cli(config, *args: str, expect: int = 0) -> str:
    result = CliRunner().invoke(main, [*args[:2], "--config", str(config), *args[2:]])
    assert result.exit_code == expect, result.output
    return result.output


def _first_blast(engine: Engine, settings) -> int:
    return start_blast(engine, settings, WRONG)


def _numbers(engine: Engine, blast_id: int, states: tuple[str, ...]) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT msisdn, state FROM sms_messages WHERE blast_id = :b"), {"b": blast_id}
        ).all()
    return {r.msisdn for r in rows if r.state in states}


def _drain(settings, engine: Engine) -> None:
    run_senders(settings, engine, threading.Event(), drain=True, receipt_wait=5)


def test_correction_of_a_cancelled_blast_reaches_exactly_its_recipients_after_approval(
    tmp_path, db_url, engine, people
):
    smsc = TestSmsc(free_port(), SmscPolicy(undeliverable_every=7, delay=0.005))
    config = write_config(tmp_path, db_url, {"viettel": smsc.port}, rate=40, window=5)
    settings = settings_for(config)
    seed_subscribers(engine, 120)
    first = _first_blast(engine, settings)
    with SmscThread([smsc]):
        sending = threading.Thread(target=_drain, args=(settings, engine))
        sending.start()
        deadline = time.monotonic() + 30
        while len(smsc.stats.accepted) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        blasts.cancel(engine, first, by="an", now=utcnow())  # the text is wrong: stop it
        sending.join(60)
        reached = _numbers(engine, first, ("sending", "submitted", "delivered", "expired"))
        failed = _numbers(engine, first, ("failed",))
        cancelled = _numbers(engine, first, ("cancelled",))
        assert reached and failed and cancelled, "the first blast was not stopped mid-way"
        assert reached | failed <= {s.destination_addr for s in smsc.stats.accepted}

        out = _cli(config, "sms", "correct", str(first), "--text", RIGHT)
        assert f"CORRECTION of blast {first}" in out and f"recipients {len(reached)}" in out
        correction = first + 1
        assert "approver" in _cli(config, "sms", "approve", str(correction), "--yes", expect=1)
        before = len(smsc.stats.accepted)
        _drain(settings, engine)
        assert len(smsc.stats.accepted) == before, "the correction went out before approval"

        _cli(config, "sms", "approve", str(correction), "--yes", *people.as_approver)
        _drain(settings, engine)
        received = reassemble(smsc.stats.accepted[before:])
    assert set(received) == reached
    assert all(texts == [RIGHT] for texts in received.values())
    status = json.loads(_cli(config, "sms", "status", str(correction), "--format", "json"))
    assert status["corrects"] == first and status["total"] == len(reached)
    assert f"[CORRECTION of blast {first}]" in _cli(config, "sms", "status", str(correction))


def test_a_blast_still_sending_or_never_sent_cannot_be_corrected(tmp_path, db_url, engine):
    settings = settings_for(write_config(tmp_path, db_url, {"viettel": free_port()}))
    seed_subscribers(engine, 5)
    router = router_of(settings)
    queued = _first_blast(engine, settings)
    with pytest.raises(BlastError, match="still has 5 messages queued: cancel it first"):
        draft_correction(
            engine, router, settings.sms, queued, body=RIGHT, unaccented=False, by="an", now=NOW
        )
    blasts.cancel(engine, queued, by="an", now=NOW)
    with pytest.raises(BlastError, match="reached no one"):
        draft_correction(
            engine, router, settings.sms, queued, body=RIGHT, unaccented=False, by="an", now=NOW
        )
    draft = blasts.draft(
        engine,
        settings.registry(),
        router,
        settings.sms,
        areas=["167"],
        body=WRONG,
        unaccented=False,
        priority=Priority.URGENT,
        by="an",
        exercise=False,
        now=NOW,
    )
    with pytest.raises(BlastError, match="is a draft"):
        draft_correction(
            engine, router, settings.sms, draft.id, body=RIGHT, unaccented=False, by="an", now=NOW
        )


def test_a_long_message_cut_between_parts_by_the_cancel_gets_the_correction(
    tmp_path, db_url, engine
):
    settings = settings_for(write_config(tmp_path, db_url, {"viettel": free_port()}))
    numbers = seed_subscribers(engine, 3)
    first = _first_blast(engine, settings)
    blasts.cancel(engine, first, by="an", now=NOW)
    with engine.begin() as conn:  # what a sender leaves when the cancel lands between parts
        cut = conn.execute(
            text("SELECT id FROM sms_messages WHERE msisdn = :m"), {"m": numbers[0]}
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO sms_parts (message_id, seq, carrier, smsc_id, "
                "submitted_at) VALUES (:id, 1, 'viettel', 'a1', :at)"
            ),
            {"id": cut, "at": NOW.isoformat()},
        )
    router = router_of(settings)
    preview = draft_correction(
        engine, router, settings.sms, first, body=RIGHT, unaccented=False, by="an", now=NOW
    )
    assert preview.recipients == 1
    blasts.approve(engine, router, settings.sms, preview.id, by="binh", now=NOW)
    assert _numbers(engine, preview.id, ("queued",)) == {numbers[0]}
