"""The clip library shared by nodes: clips imported on any node (store/library.py),
their bytes in published_audio; on PostgreSQL an import notifies (topic `library`).

Revision ID: w002
"""

import sqlalchemy as sa
from alembic import op

from broadcaster.store.changes import install_sql
from broadcaster.store.types import UTCDateTime

revision = "w002"
down_revision = ("w001", "n001")  # published_audio holds the bytes; n001 the notify function
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "library_clips",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("language", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("suffix", sa.String(16), nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("valid_from", sa.String(10)),
        sa.Column("valid_until", sa.String(10)),
        sa.Column("for_programme", sa.String(128)),
        sa.Column("airs_at", UTCDateTime()),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.Column("imported_by", sa.Integer),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in install_sql(("library_clips",)):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS library_clips_notify ON library_clips")
    op.drop_table("library_clips")
