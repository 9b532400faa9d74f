"""Accounts: the account id beside every free-text `by` column of levels, blasts, notices.

The text columns stay (history shows them; new rows hold the account's
name); plain ADD COLUMN works on both SQLite and PostgreSQL and leaves the
append-only triggers of `level_changes` in place.

Revision ID: u0002
"""

import sqlalchemy as sa
from alembic import op

revision = "u0002"
down_revision = ("u0001", "0101", "a001")  # joins the tables it extends: SMS and audio
branch_labels = None
depends_on = None

COLUMNS = {
    "level_changes": ("by_account",),
    "sms_blasts": ("created_by_account", "approved_by_account", "cancelled_by_account"),
    "audio_notices": ("created_by_account", "approved_by_account"),
}


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        for column in columns:
            op.add_column(table, sa.Column(column, sa.Integer, nullable=True))


def downgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column)
