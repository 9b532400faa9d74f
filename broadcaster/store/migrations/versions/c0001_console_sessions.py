"""Console: login sessions (the cookie holds a random token; the row keeps its hash).

Revision ID: c0001
"""

import sqlalchemy as sa
from alembic import op

from broadcaster.store.types import UTCDateTime

revision = "c0001"
down_revision = "0001"
branch_labels = ("console",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_console_sessions_account", "console_sessions", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_console_sessions_account", table_name="console_sessions")
    op.drop_table("console_sessions")
