"""Blasts and subscribers on a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from broadcaster.cli import main
from broadcaster.sms import blast as blasts
from broadcaster.sms.blast import BlastError
from broadcaster.sms.outbox import Outbox
from broadcaster.sms.outcomes import Outcomes
from broadcaster.sms.settings import SmsSettings
from broadcaster.sms.states import MessageState, Priority
from broadcaster.sms.subscribers import ImportFileError, import_csv
from tests.sms_fixtures import (
    NOW,
    THANH_HOA,
    counts,
    router_of,
    seed_subscribers,
    settings_for,
    write_config,
)

PORTS = {"viettel": 2775, "vinaphone": 2776, "mobifone": 2777}
COMMUNES = {"05437", "05440", "05443"}


@pytest.fixture
def settings(tmp_path, db_url):
    return settings_for(
        write_config(
            tmp_path,
            db_url,
            PORTS,
            sms='test_numbers = ["0961111111", "0881111111"]\n'
            'overrides = { "0960000001" = "mobifone" }',
        )
    )


def draft(engine, settings, **kw):
    args = dict(
        areas=["167"],
        body=THANH_HOA,
        unaccented=False,
        priority=Priority.ROUTINE,
        by="an",
        exercise=False,
        now=NOW,
    )
    args.update(kw)
    return blasts.draft(engine, settings.registry(), router_of(settings), settings.sms, **args)


def write_csv(tmp_path, lines):
    path = tmp_path / "subs.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_reports_bad_rows_by_line_and_imports_the_rest(tmp_path, engine, settings):
    path = write_csv(
        tmp_path,
        [
            "msisdn,commune,language,name",
            "0961234567,05437,vi,An",
            "+84 88 123 4567,05440,tyz,",
            "12345,05437,,",
            "0961234568,99999,,",
            "0991234567,05437,,",
            "84901234567,05443,,Binh",
        ],
    )
    report = import_csv(engine, path, router_of(settings), COMMUNES)
    assert (report.read, report.imported) == (6, 3)
    assert [line for line, _ in report.errors] == [4, 5, 6]
    assert "expected 0…, 84… or +84…" in report.errors[0][1]
    assert "unknown commune code '99999'" in report.errors[1][1]
    assert "no carrier prefix matches 84991234567" in report.errors[2][1]
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT msisdn, carrier FROM subscribers ORDER BY msisdn")).all()
    assert rows == [
        ("84881234567", "vinaphone"),
        ("84901234567", "mobifone"),
        ("84961234567", "viettel"),
    ]


def test_reimport_is_idempotent_and_ported_override_wins(tmp_path, engine, settings):
    path = write_csv(tmp_path, ["msisdn,commune", "0960000001,05437", "0960000002,05437"])
    for _ in range(2):
        import_csv(engine, path, router_of(settings), COMMUNES)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT msisdn, carrier FROM subscribers ORDER BY msisdn")).all()
    assert rows == [("84960000001", "mobifone"), ("84960000002", "viettel")]


def test_import_without_required_columns_names_them(tmp_path, engine, settings):
    path = write_csv(tmp_path, ["phone,commune", "0961234567,05437"])
    with pytest.raises(ImportFileError, match="line 1: missing column.*msisdn"):
        import_csv(engine, path, router_of(settings), COMMUNES)


def test_draft_previews_recipients_parts_and_carriers(engine, settings):
    seed_subscribers(engine, 30)
    seed_subscribers(engine, 12, prefix="088", carrier="vinaphone")
    preview = draft(engine, settings)
    assert preview.as_json() == {
        "id": preview.id,
        "exercise": False,
        "recipients": 42,
        "encoding": "ucs2",
        "parts": 3,
        "total_sms": 126,
        "per_carrier": {"vinaphone": 12, "viettel": 30},
        "ucs2_chars": [
            "ă",
            "ư",
            "ờ",
            "ử",
            "ụ",
            "á",
            "ị",
            "ô",
            "ự",
            "ế",
            "ê",
            "ổ",
            "ỉ",
            "ó",
            "ả",
            "ể",
            "ú",
            "đ",
            "ơ",
            "â",
            "ễ",
        ],
        "corrects": None,
    }
    assert draft(engine, settings, unaccented=True).parts == 2
    assert counts(engine, preview.id) == {}


def test_expansion_is_one_row_per_recipient_and_idempotent(engine, settings):
    seed_subscribers(engine, 300)
    preview = draft(engine, settings, areas=["05437"])
    router = router_of(settings)
    assert blasts.approve(engine, router, settings.sms, preview.id, by="binh", now=NOW) == 100
    with pytest.raises(BlastError, match="only a draft"):
        blasts.approve(engine, router, settings.sms, preview.id, by="binh", now=NOW)
    with engine.begin() as conn:
        blasts.expand(conn, settings.sms, router, preview.id, now=NOW)
    assert counts(engine, preview.id) == {"queued": 100}


def test_expansion_into_a_blast_with_messages_adds_only_the_missing_recipients(engine, settings):
    seed_subscribers(engine, 300)
    preview = draft(engine, settings, areas=["05437"])
    router = router_of(settings)
    blasts.approve(engine, router, settings.sms, preview.id, by="binh", now=NOW)
    seed_subscribers(engine, 30, prefix="086")  # ten more in 05437
    with engine.begin() as conn:
        added = blasts.expand(conn, settings.sms, router, preview.id, now=NOW)
    with engine.begin() as conn:
        again = blasts.expand(conn, settings.sms, router, preview.id, now=NOW)
    assert (added, again) == (10, 0)
    assert counts(engine, preview.id) == {"queued": 110}


def test_a_message_needs_its_blast_and_a_blast_keeps_its_messages(engine, settings):
    seed_subscribers(engine, 3)
    preview = draft(engine, settings)
    blasts.approve(engine, router_of(settings), settings.sms, preview.id, by="binh", now=NOW)
    orphan = (
        "INSERT INTO sms_messages (blast_id, msisdn, carrier, rank, state, queued_at, attempts) "
        "SELECT :b, msisdn, carrier, 0, 'queued', queued_at, 0 FROM sms_messages"
    )
    refused = (
        (orphan, {"b": preview.id + 1}),
        ("DELETE FROM sms_blasts WHERE id = :b", {"b": preview.id}),
        ("UPDATE sms_blasts SET id = id + 1 WHERE id = :b", {"b": preview.id}),
        ("UPDATE sms_messages SET blast_id = :b", {"b": preview.id + 1}),
    )
    for statement, params in refused:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(statement), params)
    assert counts(engine, preview.id) == {"queued": 3}


def test_cancel_stops_what_is_queued(engine, settings):
    seed_subscribers(engine, 10)
    preview = draft(engine, settings)
    blasts.approve(engine, router_of(settings), settings.sms, preview.id, by="binh", now=NOW)
    outbox = Outbox(engine, "viettel", "me")
    outbox.claim(NOW, 4, timedelta(seconds=60), routine_allowed=True)
    assert blasts.cancel(engine, preview.id, by="binh", now=NOW) == 6
    assert counts(engine, preview.id) == {"sending": 4, "cancelled": 6}
    report = blasts.status(engine, preview.id)
    assert (report["state"], report["total"], report["cancelled"]) == ("cancelled", 10, 6)


def test_cancelled_blast_messages_held_or_lapsed_end_cancelled_never_requeued(engine, settings):
    seed_subscribers(engine, 10)
    preview = draft(engine, settings)
    blasts.approve(engine, router_of(settings), settings.sms, preview.id, by="binh", now=NOW)
    lease = timedelta(seconds=60)
    holder = Outbox(engine, "viettel", "holder")
    held = holder.claim(NOW, 4, lease, routine_allowed=True)
    crashed = Outbox(engine, "viettel", "crashed")
    crashed.claim(NOW - 2 * lease, 2, lease, routine_allowed=True)  # its lease has lapsed
    assert blasts.cancel(engine, preview.id, by="binh", now=NOW) == 6  # queued and lapsed
    assert counts(engine, preview.id) == {"sending": 4, "cancelled": 6}
    holder.record(Outcomes(released=[held[0].id], cancelled=[(held[1].id, 1)]), NOW)
    assert counts(engine, preview.id) == {"sending": 2, "cancelled": 8}
    other = Outbox(engine, "viettel", "other")
    assert other.claim(NOW + 2 * lease, 10, lease, routine_allowed=True) == []
    assert counts(engine, preview.id) == {"cancelled": 10}
    with engine.connect() as conn:
        reasons = set(
            conn.execute(
                text("SELECT reason FROM sms_messages WHERE blast_id = :b"), {"b": preview.id}
            ).scalars()
        )
    assert reasons == {
        "blast cancelled by binh",
        "blast cancelled before submission",
        "blast cancelled; 1 part(s) had gone out",
        "blast cancelled; its sender stopped before submitting",
    }
    for outbox in (holder, crashed, other):
        outbox.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_senders_first_counted_transaction_makes_every_state_counter_it_will_lock(
    engine, settings
):
    """Senders lock their carrier's counter rows in order before moving messages; a row a
    trigger inserted later (the first `delivered`) escaped that order and let three nodes
    deadlock. PostgreSQL only: SQLite has one writer and no row locks."""
    seed_subscribers(engine, 3)
    preview = draft(engine, settings)
    blasts.approve(engine, router_of(settings), settings.sms, preview.id, by="binh", now=NOW)
    counters = text("SELECT state, n FROM sms_counters WHERE carrier = 'viettel'")
    with engine.connect() as conn:
        before = dict(conn.execute(counters).all())
    outbox = Outbox(engine, "viettel", "me")
    outbox.claim(NOW, 1, timedelta(seconds=60), routine_allowed=True)
    outbox.close()
    with engine.connect() as conn:
        after = dict(conn.execute(counters).all())
    assert set(before) == {"queued"}
    assert set(after) == {s.value for s in MessageState}
    assert after["sending"] == 1 and after["queued"] == before["queued"] - 1  # counts intact
    assert sum(after.values()) == before["queued"]


def test_exercise_goes_only_to_test_numbers(engine, settings):
    seed_subscribers(engine, 50)
    preview = draft(engine, settings, exercise=True)
    assert preview.exercise and preview.recipients == 2
    assert (
        blasts.approve(engine, router_of(settings), settings.sms, preview.id, by="binh", now=NOW)
        == 2
    )
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT msisdn, carrier FROM sms_messages ORDER BY msisdn")).all()
    assert rows == [("84881111111", "vinaphone"), ("84961111111", "viettel")]


def test_claims_are_urgent_first_and_routine_not_in_quiet_hours(engine, settings):
    seed_subscribers(engine, 3)
    router = router_of(settings)
    routine = draft(engine, settings)
    urgent = draft(engine, settings, priority=Priority.URGENT)
    for blast_id in (routine.id, urgent.id):
        blasts.approve(engine, router, settings.sms, blast_id, by="binh", now=NOW)
    outbox = Outbox(engine, "viettel", "me")
    quiet = outbox.claim(NOW, 10, timedelta(seconds=60), routine_allowed=False)
    assert {c.blast_id for c in quiet} == {urgent.id}
    rest = outbox.claim(NOW, 10, timedelta(seconds=60), routine_allowed=True)
    assert {c.blast_id for c in rest} == {routine.id}


def test_expired_lease_returns_messages_to_the_queue(engine, settings):
    seed_subscribers(engine, 4)
    preview = draft(engine, settings)
    blasts.approve(engine, router_of(settings), settings.sms, preview.id, by="binh", now=NOW)
    crashed = Outbox(engine, "viettel", "crashed")
    assert len(crashed.claim(NOW, 10, timedelta(seconds=30), True)) == 4
    other = Outbox(engine, "viettel", "other")
    assert other.claim(NOW + timedelta(seconds=10), 10, timedelta(seconds=30), True) == []
    assert len(other.claim(NOW + timedelta(seconds=31), 10, timedelta(seconds=30), True)) == 4


def test_submitted_message_without_final_receipt_expires(engine, settings):
    seed_subscribers(engine, 2)
    preview = draft(engine, settings)
    blasts.approve(engine, router_of(settings), settings.sms, preview.id, by="binh", now=NOW)
    outbox = Outbox(engine, "viettel", "me")
    claimed = outbox.claim(NOW, 10, timedelta(seconds=60), True)
    outbox.record(Outcomes(submitted=[c.id for c in claimed]), NOW)
    assert outbox.expire_overdue(NOW + timedelta(hours=23), timedelta(hours=24)) == 0
    assert outbox.expire_overdue(NOW + timedelta(hours=25), timedelta(hours=24)) == 2
    assert counts(engine, preview.id) == {"expired": 2}


@pytest.mark.parametrize(
    ("local", "quiet"),
    [(time(20, 59), False), (time(21, 0), True), (time(3, 0), True), (time(6, 0), False)],
)
def test_quiet_hours_wrap_midnight(local, quiet):
    assert SmsSettings(quiet_hours="21:00-06:00").quiet().contains(local) is quiet


def test_routine_allowed_uses_the_configured_zone():
    sms = SmsSettings(quiet_hours="21:00-06:00")
    at_22_local = datetime(2026, 1, 1, 15, 0, tzinfo=UTC)
    assert not sms.routine_allowed(at_22_local, ZoneInfo("Asia/Ho_Chi_Minh"))
    assert sms.routine_allowed(at_22_local, ZoneInfo("UTC"))


def test_bad_quiet_hours_are_refused():
    with pytest.raises(ValueError, match="21:00-06:00"):
        SmsSettings(quiet_hours="9pm-6am")


def test_cli_draft_json_and_status_json(tmp_path, db_url, engine, people):
    config = write_config(tmp_path, db_url, PORTS)
    seed_subscribers(engine, 7)
    runner = CliRunner()
    out = runner.invoke(
        main,
        [
            "sms",
            "draft",
            "--config",
            str(config),
            "--area",
            "167",
            "--text",
            THANH_HOA,
            "--format",
            "json",
        ],
    )
    assert out.exit_code == 0, out.output
    preview = json.loads(out.output)
    assert set(preview) >= {"id", "recipients", "encoding", "parts", "total_sms", "per_carrier"}
    assert (preview["recipients"], preview["parts"], preview["total_sms"]) == (7, 3, 21)
    out = runner.invoke(
        main, ["sms", "approve", "--config", str(config), str(preview["id"]), "--yes"]
    )
    assert out.exit_code == 1 and "approver" in out.output
    out = runner.invoke(
        main,
        [
            "sms",
            "approve",
            "--config",
            str(config),
            str(preview["id"]),
            "--yes",
            *people.as_approver,
        ],
    )
    assert out.exit_code == 0, out.output
    out = runner.invoke(
        main, ["sms", "status", "--config", str(config), str(preview["id"]), "--format", "json"]
    )
    status = json.loads(out.output)
    assert status["total"] == 7 and status["queued"] == 7
    assert status["per_carrier"]["viettel"]["queued"] == 7
    assert set(status) >= {
        "queued",
        "sending",
        "submitted",
        "delivered",
        "failed",
        "expired",
        "cancelled",
    }


def test_cli_exercise_draft_says_so(tmp_path, db_url, engine, people):
    config = write_config(tmp_path, db_url, PORTS, sms='test_numbers = ["0961111111"]')
    out = CliRunner().invoke(
        main,
        [
            "sms",
            "draft",
            "--config",
            str(config),
            "--area",
            "167",
            "--text",
            "Diễn tập",
            "--exercise",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "EXERCISE" in out.output


def test_cli_import_prints_each_bad_line(tmp_path, db_url, engine):
    config = write_config(tmp_path, db_url, PORTS)
    path = write_csv(tmp_path, ["msisdn,commune", "0961234567,05437", "bad,05437"])
    out = CliRunner().invoke(main, ["subscribers", "import", "--config", str(config), str(path)])
    assert out.exit_code == 0, out.output
    assert f"{path}:3: msisdn:" in out.output
    assert "1 subscribers imported, 1 rows rejected of 2" in out.output


def _accepted_by(engine, name="Trần Thị B"):
    """Record a schedule set accepted by an approver, as `schedule approve` does."""
    from broadcaster.accounts import Role
    from broadcaster.store import accounts
    from broadcaster.store.schedules import record

    approver = accounts.add_account(
        engine, name=name, role=Role.APPROVER, areas=["19"], unix_login=None, now=NOW
    )
    record(engine, {}, account_id=approver.id, now=NOW, note="test")
    return approver


def test_scheduled_sms_occurrences_become_one_approved_blast(engine, settings):
    from broadcaster.occurrence import Channel, Occurrence, SmsText
    from broadcaster.occurrence import Priority as Bulletin
    from broadcaster.sms.scheduled import SmsHandler

    seed_subscribers(engine, 9)
    approver = _accepted_by(engine)
    occurrences = [
        Occurrence(
            "urgent-notice-sms",
            Channel.SMS,
            area,
            NOW,
            Bulletin.EMERGENCY,
            SmsText("Khẩn: ở nhà."),
            None,
            "5.1",
        )
        for area in ("05437", "05440")
    ]
    assert SmsHandler(settings, engine, lambda: NOW)(occurrences) == {}
    with engine.connect() as conn:
        blast = conn.execute(
            text(
                "SELECT id, priority, created_by, approved_by, state, approved_by_account "
                "FROM sms_blasts"
            )
        ).one()
    assert blast[1:] == (
        "urgent",
        "schedule:urgent-notice-sms",
        "Trần Thị B",
        "approved",
        approver.id,
    )
    assert counts(engine, blast.id) == {"queued": 6}


def test_scheduled_sms_without_text_fails_each_occurrence(engine, settings):
    from broadcaster.occurrence import Channel, Occurrence, Task
    from broadcaster.occurrence import Priority as Bulletin
    from broadcaster.sms.scheduled import SmsHandler

    occurrence = Occurrence("p", Channel.SMS, "05437", NOW, Bulletin.NORMAL, Task(), None, "1")
    _accepted_by(engine)
    failures = SmsHandler(settings, engine, lambda: NOW)([occurrence])
    assert "no SMS text" in failures[occurrence.key]


def test_scheduled_sms_without_an_accepted_schedule_sends_nothing(engine, settings):
    from broadcaster.occurrence import Channel, Occurrence, SmsText
    from broadcaster.occurrence import Priority as Bulletin
    from broadcaster.sms.scheduled import SmsHandler

    seed_subscribers(engine, 9)
    occurrence = Occurrence(
        "p", Channel.SMS, "05437", NOW, Bulletin.NORMAL, SmsText("x"), None, "1"
    )
    failures = SmsHandler(settings, engine, lambda: NOW)([occurrence])
    assert "schedule approve" in failures[occurrence.key]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sms_blasts")).scalar_one() == 0


def test_cli_draft_names_the_characters_that_still_force_ucs2(tmp_path, db_url, engine, people):
    config = write_config(tmp_path, db_url, PORTS)
    seed_subscribers(engine, 3)
    args = [
        "sms",
        "draft",
        "--config",
        str(config),
        "--area",
        "167",
        "--unaccent",
        "--text",
        "“Ở yên” – tại chỗ… ✓ Đã rõ 😀",
    ]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    assert "UCS-2 because of: ✓ 😀" in out.output
    out = CliRunner().invoke(main, [*args, "--format", "json"])
    assert json.loads(out.output)["ucs2_chars"] == ["✓", "😀"]
    out = CliRunner().invoke(main, [*args[:-1], "“Ở yên” – tại chỗ…", "--format", "json"])
    preview = json.loads(out.output)
    assert (preview["encoding"], preview["parts"], preview["ucs2_chars"]) == ("gsm7", 1, [])
