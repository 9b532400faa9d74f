"""Planner: the dispatch table (one row per fired occurrence) and the daemon's status.

Revision ID: p0001
"""

import sqlalchemy as sa
from alembic import op

from broadcaster.store.types import UTCDateTime

revision = "p0001"
down_revision = "0001"
branch_labels = ("planner",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dispatch",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("programme", sa.String(64), nullable=False),
        sa.Column("area", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.UniqueConstraint("programme", "area", "at", name="uq_dispatch_key"),
    )
    op.create_index("ix_dispatch_state", "dispatch", ["state"])
    op.create_table(
        "daemon_status",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("node", sa.String(128), nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.Column("report", sa.Text, nullable=False, server_default="{}"),
        sa.Column("reloads", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("daemon_status")
    op.drop_index("ix_dispatch_state", table_name="dispatch")
    op.drop_table("dispatch")
