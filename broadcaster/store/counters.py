"""Row counts by state kept by the database itself, so /metrics reads a few rows
instead of counting millions.

`sms_counters` holds how many messages each carrier has in each state, and
`dispatch_counters` how many occurrences each channel has in each state. Triggers
on the counted tables keep them exact in the same transaction as the change,
whoever makes it (senders, blasts, the scheduler, a CLI command, psql), with no
code of ours on the write path. On PostgreSQL the triggers run once per
statement over its transition tables (one upsert per carrier and state, in key
order); a sender's transaction of several statements first locks its carrier's
rows in that order too (`sms/outbox.py`), or senders on several nodes deadlock.
SQLite has only row triggers.

A migration that rebuilds a counted table (Alembic's batch mode on SQLite copies
it into a new one) drops its triggers: run `install_sql` for it again there.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.store.models import Base


class SmsCounterRow(Base):
    __tablename__ = "sms_counters"

    carrier: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class DispatchCounterRow(Base):
    __tablename__ = "dispatch_counters"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class Counted:
    """A table whose rows are counted by (`key`, `state`) into `counters`."""

    table: str
    key: str
    counters: str

    def backfill_sql(self) -> str:
        return (
            f"INSERT INTO {self.counters} ({self.key}, state, n) "
            f"SELECT {self.key}, state, count(*) FROM {self.table} GROUP BY {self.key}, state"
        )

    def install_sql(self, dialect: str) -> list[str]:
        """Statements creating the triggers on `dialect` ("sqlite" or "postgresql")."""
        return _postgresql(self) if dialect == "postgresql" else _sqlite(self)

    def drop_sql(self, dialect: str) -> list[str]:
        names = [f"{self.counters}_{op}" for op in ("ins", "upd", "del")]
        if dialect == "postgresql":  # dropping a function drops its trigger
            return [f"DROP FUNCTION IF EXISTS {name}() CASCADE" for name in names]
        return [f"DROP TRIGGER IF EXISTS {name}" for name in names]


SMS = Counted("sms_messages", "carrier", "sms_counters")
DISPATCH = Counted("dispatch", "channel", "dispatch_counters")


def _sqlite(c: Counted) -> list[str]:
    def add(row: str, delta: int) -> str:
        return (
            f"INSERT INTO {c.counters} ({c.key}, state, n) "
            f"VALUES ({row}.{c.key}, {row}.state, {delta}) "
            f"ON CONFLICT ({c.key}, state) DO UPDATE SET n = n + {delta};"
        )

    return [
        f"CREATE TRIGGER {c.counters}_ins AFTER INSERT ON {c.table} BEGIN {add('NEW', 1)} END",
        f"CREATE TRIGGER {c.counters}_upd AFTER UPDATE OF {c.key}, state ON {c.table} "
        f"WHEN OLD.{c.key} IS NOT NEW.{c.key} OR OLD.state IS NOT NEW.state "
        f"BEGIN {add('OLD', -1)} {add('NEW', 1)} END",
        f"CREATE TRIGGER {c.counters}_del AFTER DELETE ON {c.table} BEGIN {add('OLD', -1)} END",
    ]


def _postgresql(c: Counted) -> list[str]:
    def deltas(source: str, sign: str) -> str:
        return f"SELECT {c.key}, state, {sign}1 AS d FROM {source}"

    function = f"""
CREATE FUNCTION {{name}}() RETURNS trigger AS $$
BEGIN
  INSERT INTO {c.counters} ({c.key}, state, n)
  SELECT {c.key}, state, sum(d) FROM (
    {{rows}}
  ) AS changes GROUP BY {c.key}, state HAVING sum(d) <> 0 ORDER BY {c.key}, state
  ON CONFLICT ({c.key}, state) DO UPDATE SET n = {c.counters}.n + EXCLUDED.n;
  RETURN NULL;
END $$ LANGUAGE plpgsql"""
    # One function per shape of transition tables: INSERT has only new rows,
    # DELETE only old ones, UPDATE both.
    shapes = {
        "ins": ("INSERT", "REFERENCING NEW TABLE AS new_rows", deltas("new_rows", "+")),
        "upd": (
            "UPDATE",
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
            f"{deltas('old_rows', '-')} UNION ALL {deltas('new_rows', '+')}",
        ),
        "del": ("DELETE", "REFERENCING OLD TABLE AS old_rows", deltas("old_rows", "-")),
    }
    statements = []
    for op, (event, referencing, rows) in shapes.items():
        name = f"{c.counters}_{op}"
        statements.append(function.replace("{name}", name).replace("{rows}", rows))
        statements.append(
            f"CREATE TRIGGER {name} AFTER {event} ON {c.table} {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    return statements
