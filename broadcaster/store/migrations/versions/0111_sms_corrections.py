"""SMS: a blast may be the correction of an earlier one (`corrects`).

Revision ID: 0111
"""

import sqlalchemy as sa
from alembic import op

revision = "0111"
down_revision = "0101"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite adds a nullable referencing column in place; batch mode would rebuild
    # sms_blasts, and dropping the old table fails while sms_messages point at it.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE sms_blasts ADD COLUMN corrects INTEGER REFERENCES sms_blasts (id)")
        return
    op.add_column("sms_blasts", sa.Column("corrects", sa.Integer))
    op.create_foreign_key(
        "fk_sms_blasts_corrects", "sms_blasts", "sms_blasts", ["corrects"], ["id"]
    )


def downgrade() -> None:
    with op.batch_alter_table("sms_blasts") as batch:
        batch.drop_constraint("fk_sms_blasts_corrects", type_="foreignkey")
        batch.drop_column("corrects")
