"""Re-fire after a takeover: dispatch attempts and previous node; a scheduled blast keyed
by its occurrence, so a re-fired SMS occurrence finds the blast it already made.

Revision ID: r001
"""

import sqlalchemy as sa
from alembic import op

revision = "r001"
down_revision = ("0111", "p0001")  # sms_blasts (0101, last altered by 0111); dispatch
branch_labels = ("refire",)
depends_on = None


def upgrade() -> None:
    op.add_column("dispatch", sa.Column("attempts", sa.Integer, nullable=False, server_default="1"))
    op.add_column("dispatch", sa.Column("previous_node", sa.String(128), nullable=True))
    op.add_column("sms_blasts", sa.Column("occurrence", sa.String(160), nullable=True))
    op.create_index("uq_sms_blasts_occurrence", "sms_blasts", ["occurrence"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_sms_blasts_occurrence", table_name="sms_blasts")
    with op.batch_alter_table("sms_blasts") as batch:
        batch.drop_column("occurrence")
    with op.batch_alter_table("dispatch") as batch:
        batch.drop_column("previous_node")
        batch.drop_column("attempts")
