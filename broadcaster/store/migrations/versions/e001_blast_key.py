"""SMS expansion: the message → blast key checked per statement on PostgreSQL.

Revision ID: e001
"""

from alembic import op

from broadcaster.store import blast_key

revision = "e001"
down_revision = "0101"  # sms_messages and sms_blasts
branch_labels = ("expansion",)
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in blast_key.install_sql():
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in blast_key.drop_sql():
            op.execute(statement)
