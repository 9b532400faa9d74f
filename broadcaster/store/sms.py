"""Tables of the SMS side: subscribers, blasts, one row per recipient, one per part."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.store.models import Base
from broadcaster.store.types import UTCDateTime


class SubscriberRow(Base):
    """A mobile subscriber in a commune, routed to a carrier at import time."""

    __tablename__ = "subscribers"
    __table_args__ = (Index("ix_subscribers_commune", "commune"),)

    msisdn: Mapped[str] = mapped_column(String(16), primary_key=True)
    commune: Mapped[str] = mapped_column(String(32))
    carrier: Mapped[str] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))


class BlastRow(Base):
    """One SMS blast: its text, who drafted and approved it, and to where."""

    __tablename__ = "sms_blasts"
    __table_args__ = (Index("uq_sms_blasts_occurrence", "occurrence", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text)
    unaccented: Mapped[bool] = mapped_column(Boolean)
    encoding: Mapped[str] = mapped_column(String(8))
    parts: Mapped[int] = mapped_column(SmallInteger)
    priority: Mapped[str] = mapped_column(String(8))
    exercise: Mapped[bool] = mapped_column(Boolean)
    areas: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(128))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(128))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(String(128))
    created_by_account: Mapped[int | None] = mapped_column(Integer)
    approved_by_account: Mapped[int | None] = mapped_column(Integer)
    cancelled_by_account: Mapped[int | None] = mapped_column(Integer)
    corrects: Mapped[int | None] = mapped_column(
        ForeignKey("sms_blasts.id", name="fk_sms_blasts_corrects")
    )
    # "programme@instant" of the scheduled occurrence that made it: unique, so an
    # occurrence re-fired after a takeover never makes a second blast
    occurrence: Mapped[str | None] = mapped_column(String(160))


class MessageRow(Base):
    """One recipient of a blast and where its message is in its life."""

    __tablename__ = "sms_messages"
    __table_args__ = (
        UniqueConstraint("blast_id", "msisdn", name="uq_sms_messages_blast_msisdn"),
        Index("ix_sms_messages_claim", "carrier", "state", "rank", "id"),
        Index("ix_sms_messages_blast_state", "blast_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # On PostgreSQL checked once per INSERT statement by triggers (store/blast_key.py).
    blast_id: Mapped[int] = mapped_column(ForeignKey("sms_blasts.id"))
    msisdn: Mapped[str] = mapped_column(String(16))
    carrier: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(SmallInteger)
    state: Mapped[str] = mapped_column(String(12))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sending_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    final_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)


class PartRow(Base):
    """One submitted part, keyed by the id the SMSC gave it, for receipt matching."""

    __tablename__ = "sms_parts"
    __table_args__ = (
        Index("ix_sms_parts_carrier_smsc_id", "carrier", "smsc_id"),
        Index("ix_sms_parts_message", "message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("sms_messages.id"))
    seq: Mapped[int] = mapped_column(SmallInteger)
    carrier: Mapped[str] = mapped_column(String(64))
    smsc_id: Mapped[str] = mapped_column(String(72))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stat: Mapped[str | None] = mapped_column(String(12))
    receipt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
