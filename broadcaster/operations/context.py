"""What every operation is given: the settings, the database and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from broadcaster.areas import AreaRegistry
from broadcaster.levels import Ladder

if TYPE_CHECKING:
    from broadcaster.config import Settings
    from broadcaster.sms.numbers import CarrierRouter


class NotFound(LookupError):
    """The blast, notice or other thing named does not exist."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    """What operations need: the settings, the database and the clock (tests pass theirs)."""

    settings: Settings
    engine: Engine
    clock: Callable[[], datetime] = field(default=utc_now)

    @cached_property
    def registry(self) -> AreaRegistry:
        return self.settings.registry()

    @cached_property
    def ladders(self) -> dict[str, Ladder]:
        return self.settings.ladder_objects()

    @cached_property
    def router(self) -> CarrierRouter:
        from broadcaster.sms.carriers import router_from_settings

        return router_from_settings(self.settings)

    def now(self) -> datetime:
        return self.clock()
