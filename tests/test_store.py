"""Storage on SQLite and PostgreSQL: schema checks, the audit log, UTC round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import DatabaseError, StatementError

from broadcaster.config import load_settings
from broadcaster.store.db import (
    SchemaOutdated,
    alembic_config,
    check_schema,
    make_engine,
    session_scope,
    upgrade,
)
from broadcaster.store.levels import change_marker, load_changes, set_level
from broadcaster.store.models import LevelChangeRow
from tests.conftest import REPO

SETTINGS = load_settings(REPO / "config.toml")
REGISTRY = SETTINGS.registry()
LADDERS = SETTINGS.ladder_objects()
NOW = datetime(2021, 9, 5, 8, 30, tzinfo=timezone(timedelta(hours=7)))


def test_empty_database_names_the_command_that_fixes_it(db_url: str) -> None:
    with pytest.raises(SchemaOutdated, match=r"run `broadcaster db upgrade`"):
        check_schema(make_engine(db_url))


def test_upgraded_database_passes_the_schema_check(engine: Engine) -> None:
    check_schema(engine)


def test_level_change_survives_a_new_engine_with_time_in_utc(engine: Engine, db_url: str) -> None:
    set_level(engine, REGISTRY, LADDERS, area="167", level="5.2", by="op", reason="CT16", now=NOW)
    engine.dispose()
    reopened = make_engine(db_url)
    [change] = load_changes(reopened)
    assert (change.area, change.level, change.previous) == ("167", "5.2", "5.1")
    assert change.at == NOW and change.at.tzinfo == UTC
    reopened.dispose()


def test_previous_level_is_recorded_with_each_change(engine: Engine) -> None:
    set_level(engine, REGISTRY, LADDERS, area="167", level="5.2", by="a", reason="r", now=NOW)
    set_level(
        engine,
        REGISTRY,
        LADDERS,
        area="05440",
        level="5.3",
        by="b",
        reason="r",
        now=NOW + timedelta(minutes=1),
    )
    changes = load_changes(engine)
    assert [(c.area, c.previous) for c in changes] == [("167", "5.1"), ("05440", "5.2")]
    assert change_marker(engine) == 2


@pytest.mark.parametrize(
    "statement", ["UPDATE level_changes SET level = '1'", "DELETE FROM level_changes"]
)
def test_audit_records_can_never_be_updated_or_deleted(engine: Engine, statement: str) -> None:
    set_level(engine, REGISTRY, LADDERS, area="167", level="5.2", by="a", reason="r", now=NOW)
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    assert len(load_changes(engine)) == 1


def test_unknown_level_writes_nothing(engine: Engine) -> None:
    with pytest.raises(LookupError):
        set_level(engine, REGISTRY, LADDERS, area="167", level="7", by="a", reason="r", now=NOW)
    assert load_changes(engine) == []


def test_naive_time_is_refused_by_the_column_type(engine: Engine) -> None:
    row = LevelChangeRow(
        area="167",
        level="5.2",
        ladder="thai-nguyen",
        previous=None,
        at=datetime(2021, 9, 5, 8, 30),
        by="a",
        reason="r",
    )
    with (
        pytest.raises(StatementError, match="naive datetime refused"),
        session_scope(engine) as session,
    ):
        session.add(row)
    assert load_changes(engine) == []


def test_database_behind_a_feature_branch_is_called_older(db_url: str) -> None:
    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine), "0001")
    with pytest.raises(SchemaOutdated, match=r"at revision 0001, older than this broadcaster"):
        check_schema(engine)
    engine.dispose()


def test_a_database_of_the_last_release_with_blasts_upgrades_to_the_heads(engine: Engine) -> None:
    """Each migration of this round meets rows, not only empty tables (SQLite's
    table rebuilds fail on rows that other tables point at)."""
    config = alembic_config(engine)
    for revision in ("0001", "0101", "a001", "p0001"):  # the heads of the previous release
        command.upgrade(config, revision)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sms_blasts (id, text, unaccented, encoding, parts, priority, exercise,"
                " areas, state, created_at, created_by) VALUES (1, 'Thong bao', false, 'gsm', 1,"
                " 'urgent', false, '{\"areas\": [\"167\"]}', 'sending', :t, 'Nguyen Van A')"
            ),
            {"t": "2026-11-30 01:00:00.000000"},
        )
        conn.execute(
            text(
                "INSERT INTO sms_messages (blast_id, msisdn, carrier, rank, state, queued_at)"
                " VALUES (1, '84912345678', 'viettel', 0, 'delivered', :t)"
            ),
            {"t": "2026-11-30 01:00:00.000000"},
        )
    upgrade(engine)
    check_schema(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT state, corrects FROM sms_blasts WHERE id = 1")).one()
    assert tuple(row) == ("sending", None)
