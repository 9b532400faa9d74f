"""Metrics: message and occurrence counts by state, kept by triggers (store/counters.py).

Revision ID: m001
"""

import sqlalchemy as sa
from alembic import op

from broadcaster.store.counters import DISPATCH, SMS

revision = "m001"
down_revision = ("0101", "p0001")  # the counted tables: sms_messages, dispatch
branch_labels = ("metrics",)
depends_on = None


def upgrade() -> None:
    for counted in (SMS, DISPATCH):
        op.create_table(
            counted.counters,
            sa.Column(counted.key, sa.String(64), primary_key=True),
            sa.Column("state", sa.String(16), primary_key=True),
            sa.Column("n", sa.Integer, nullable=False, server_default="0"),
        )
        dialect = op.get_bind().dialect.name
        for statement in counted.install_sql(dialect):
            op.execute(statement)
        op.execute(counted.backfill_sql())


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for counted in (SMS, DISPATCH):
        for statement in counted.drop_sql(dialect):
            op.execute(statement)
        op.drop_table(counted.counters)
