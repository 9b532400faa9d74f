"""The foundation's tables; other concepts add theirs in their own modules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from broadcaster.levels import LevelChange
from broadcaster.store.types import UTCDateTime


class Base(DeclarativeBase):
    pass


class LevelChangeRow(Base):
    """One alert-level decision. Append-only: triggers refuse UPDATE and DELETE."""

    __tablename__ = "level_changes"
    __table_args__ = (Index("ix_level_changes_area_at", "area", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    area: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(32))
    ladder: Mapped[str] = mapped_column(String(64))
    previous: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by: Mapped[str] = mapped_column(String(128))
    by_account: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)

    def to_change(self) -> LevelChange:
        return LevelChange(self.area, self.level, self.at, self.by, self.reason, self.previous)
