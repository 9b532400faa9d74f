"""Audio: a notice can be retracted; who did it and when is kept on the notice.

Revision ID: a002
"""

import sqlalchemy as sa
from alembic import op

from broadcaster.store.types import UTCDateTime

revision = "a002"
down_revision = "a001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audio_notices") as batch:
        batch.add_column(sa.Column("retracted_by", sa.String(128)))
        batch.add_column(sa.Column("retracted_at", UTCDateTime()))


def downgrade() -> None:
    with op.batch_alter_table("audio_notices") as batch:
        batch.drop_column("retracted_at")
        batch.drop_column("retracted_by")
