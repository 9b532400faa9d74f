"""Audio: stations' as-run reports and emergency notices for loudspeakers.

Revision ID: a001
"""

import sqlalchemy as sa
from alembic import op

from broadcaster.store.types import UTCDateTime

revision = "a001"
down_revision = "0001"
branch_labels = ("audio",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audio_asrun",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("slot", sa.String(64)),
        sa.Column("item", sa.String(256), nullable=False),
        sa.Column("started", UTCDateTime(), nullable=False),
        sa.Column("finished", UTCDateTime()),
        sa.Column("received", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_audio_asrun_station_started", "audio_asrun", ["station", "started"])
    op.create_table(
        "audio_notices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("areas", sa.Text, nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("clip_file", sa.Text, nullable=False),
        sa.Column("clip_sha256", sa.String(64), nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("approved_by", sa.String(128)),
        sa.Column("approved_at", UTCDateTime()),
    )


def downgrade() -> None:
    op.drop_table("audio_notices")
    op.drop_index("ix_audio_asrun_station_started", "audio_asrun")
    op.drop_table("audio_asrun")
