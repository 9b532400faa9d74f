"""SMS: subscribers, blasts, messages and parts.

Revision ID: 0101
"""

import sqlalchemy as sa
from alembic import op

from broadcaster.store.types import UTCDateTime

revision = "0101"
down_revision = "0001"
branch_labels = ("sms",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("msisdn", sa.String(16), primary_key=True),
        sa.Column("commune", sa.String(32), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16)),
        sa.Column("name", sa.String(200)),
    )
    op.create_index("ix_subscribers_commune", "subscribers", ["commune"])
    op.create_table(
        "sms_blasts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("unaccented", sa.Boolean, nullable=False),
        sa.Column("encoding", sa.String(8), nullable=False),
        sa.Column("parts", sa.SmallInteger, nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("exercise", sa.Boolean, nullable=False),
        sa.Column("areas", sa.Text, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("approved_at", UTCDateTime()),
        sa.Column("approved_by", sa.String(128)),
        sa.Column("cancelled_at", UTCDateTime()),
        sa.Column("cancelled_by", sa.String(128)),
    )
    op.create_table(
        "sms_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("blast_id", sa.Integer, sa.ForeignKey("sms_blasts.id"), nullable=False),
        sa.Column("msisdn", sa.String(16), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("rank", sa.SmallInteger, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("queued_at", UTCDateTime(), nullable=False),
        sa.Column("sending_at", UTCDateTime()),
        sa.Column("submitted_at", UTCDateTime()),
        sa.Column("final_at", UTCDateTime()),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.Integer),
        sa.Column("reason", sa.Text),
        sa.UniqueConstraint("blast_id", "msisdn", name="uq_sms_messages_blast_msisdn"),
    )
    op.create_index("ix_sms_messages_claim", "sms_messages", ["carrier", "state", "rank", "id"])
    op.create_index("ix_sms_messages_blast_state", "sms_messages", ["blast_id", "state"])
    op.create_table(
        "sms_parts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("sms_messages.id"), nullable=False),
        sa.Column("seq", sa.SmallInteger, nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("smsc_id", sa.String(72), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("stat", sa.String(12)),
        sa.Column("receipt_at", UTCDateTime()),
    )
    op.create_index("ix_sms_parts_carrier_smsc_id", "sms_parts", ["carrier", "smsc_id"])
    op.create_index("ix_sms_parts_message", "sms_parts", ["message_id"])


def downgrade() -> None:
    for table in ("sms_parts", "sms_messages", "sms_blasts", "subscribers"):
        op.drop_table(table)
