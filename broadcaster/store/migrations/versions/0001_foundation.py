"""Foundation: the append-only audit of alert-level changes.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from broadcaster.store.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_SQLITE = """
CREATE TRIGGER level_changes_no_{op} BEFORE {OP} ON level_changes
BEGIN SELECT RAISE(ABORT, 'level_changes is an append-only audit log'); END
"""

APPEND_ONLY_PG_FUNCTION = """
CREATE FUNCTION level_changes_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'level_changes is an append-only audit log'; END
$$ LANGUAGE plpgsql
"""

APPEND_ONLY_PG_TRIGGER = """
CREATE TRIGGER level_changes_append_only BEFORE UPDATE OR DELETE ON level_changes
FOR EACH ROW EXECUTE FUNCTION level_changes_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "level_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("area", sa.String(32), nullable=False),
        sa.Column("level", sa.String(32), nullable=False),
        sa.Column("ladder", sa.String(64), nullable=False),
        sa.Column("previous", sa.String(32)),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_level_changes_area_at", "level_changes", ["area", "at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_PG_FUNCTION)
        op.execute(APPEND_ONLY_PG_TRIGGER)
    else:
        for name in ("update", "delete"):
            op.execute(APPEND_ONLY_SQLITE.format(op=name, OP=name.upper()))


def downgrade() -> None:
    op.drop_table("level_changes")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS level_changes_append_only()")
