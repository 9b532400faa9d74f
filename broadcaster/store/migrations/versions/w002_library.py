"""The clip library shared by nodes: every import a version, pending until a second
account approves it (store/library.py), its bytes in published_audio; on PostgreSQL a
change notifies (topic `library`).

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
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("language", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("suffix", sa.String(16), nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("valid_from", sa.String(10)),
        sa.Column("valid_until", sa.String(10)),
        sa.Column("for_programme", sa.String(128)),
        sa.Column("airs_at", UTCDateTime()),
        sa.Column("areas", sa.Text, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.Column("imported_by", sa.Integer),
        sa.Column("imported_name", sa.String(128), nullable=False),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("decided_at", UTCDateTime()),
        sa.Column("decided_by", sa.Integer),
    )
    op.create_index("ix_library_clips_clip", "library_clips", ["id", "language", "state"])
    live = sa.text("state = 'live'")
    op.create_index(
        "uq_library_clips_live",
        "library_clips",
        ["id", "language"],
        unique=True,
        postgresql_where=live,
        sqlite_where=live,
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in install_sql(("library_clips",)):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS library_clips_notify ON library_clips")
    op.drop_table("library_clips")
