"""Changes announced: triggers that NOTIFY on level, notice and schedule changes
(PostgreSQL only; store/changes.py). SQLite has no NOTIFY and is polled.

Revision ID: n001
"""

from alembic import op

from broadcaster.store.changes import drop_sql, install_sql

revision = "n001"
# the notifying tables: level_changes (0001), audio_notices (a002), daemon_status
# (p0001), schedule_sets (u0001)
down_revision = ("a002", "p0001", "u0001")
branch_labels = ("changes",)
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in install_sql(
            ("level_changes", "audio_notices", "schedule_sets", "daemon_status")
        ):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in drop_sql():
            op.execute(statement)
