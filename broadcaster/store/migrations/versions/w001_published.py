"""Published station days, audio bytes, render index, plan and token secret, shared by nodes.

Revision ID: w001
"""

import sqlalchemy as sa
from alembic import op

revision = "w001"
down_revision = "0001"
branch_labels = ("published",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "published_days",
        sa.Column("station", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),  # last: SQLite reads past nothing
    )
    # Covers the publisher's hash comparison, which must not read 10,000 bodies.
    op.create_index("ix_published_days_day_hash", "published_days", ["day", "station", "sha256"])
    op.create_table(
        "published_audio",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "published_renders",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("lufs", sa.Float),
        sa.Column("true_peak", sa.Float),
    )
    state = op.create_table(
        "published_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("plan", sa.Text),
        sa.Column("token_secret", sa.String(128)),
    )
    op.bulk_insert(state, [{"id": 1, "revision": 0}])


def downgrade() -> None:
    for table in ("published_state", "published_renders", "published_audio", "published_days"):
        op.drop_table(table)
