"""The carrier router the config describes: the shell's bridge to the pure `numbers`."""

from __future__ import annotations

from broadcaster.config import Settings
from broadcaster.sms.numbers import CarrierRouter, build_router


def router_from_settings(settings: Settings) -> CarrierRouter:
    """Build the router from the config's carrier prefixes and ported-number overrides."""
    return build_router(
        {name: c.prefixes for name, c in settings.carriers.items()}, settings.sms.overrides
    )
