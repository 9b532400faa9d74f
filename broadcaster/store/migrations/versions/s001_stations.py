"""Stations: heartbeats, last polls, and as-run reports with ids, events and reasons.

Revision ID: s001
"""

import sqlalchemy as sa
from alembic import op

from broadcaster.store.types import UTCDateTime

revision = "s001"
down_revision = "a001"
branch_labels = ("stations",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "station_heartbeats",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("cache_until", sa.String(10)),
        sa.Column("disk_free", sa.BigInteger),
        sa.Column("player", sa.String(32), nullable=False),
        sa.Column("last_item", sa.String(256)),
        sa.Column("last_aired", UTCDateTime()),
    )
    op.create_index("ix_station_heartbeats_station_at", "station_heartbeats", ["station", "at"])
    op.create_table(
        "station_polls",
        sa.Column("station", sa.String(64), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    with op.batch_alter_table("audio_asrun") as batch:
        batch.add_column(sa.Column("report_id", sa.String(64)))
        batch.add_column(sa.Column("event", sa.String(16)))
        batch.add_column(sa.Column("day", sa.String(10)))
        batch.add_column(sa.Column("programme", sa.String(128)))
        batch.add_column(sa.Column("reason", sa.Text))
        batch.create_unique_constraint("uq_audio_asrun_report_id", ["report_id"])


def downgrade() -> None:
    with op.batch_alter_table("audio_asrun") as batch:
        batch.drop_constraint("uq_audio_asrun_report_id", type_="unique")
        for column in ("reason", "programme", "day", "event", "report_id"):
            batch.drop_column(column)
    op.drop_table("station_polls")
    op.drop_index("ix_station_heartbeats_station_at", "station_heartbeats")
    op.drop_table("station_heartbeats")
