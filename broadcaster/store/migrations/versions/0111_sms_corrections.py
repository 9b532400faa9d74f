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
    with op.batch_alter_table("sms_blasts") as batch:
        batch.add_column(sa.Column("corrects", sa.Integer))
        batch.create_foreign_key("fk_sms_blasts_corrects", "sms_blasts", ["corrects"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("sms_blasts") as batch:
        batch.drop_constraint("fk_sms_blasts_corrects", type_="foreignkey")
        batch.drop_column("corrects")
