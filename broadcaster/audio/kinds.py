"""What a clip is for; its own module so that commands can offer the kinds cheaply."""

from __future__ import annotations

from enum import StrEnum


class ClipKind(StrEnum):
    BULLETIN = "bulletin"
    CHIME = "chime"
    NOTICE = "notice"
    RELAY = "relay"
    RECORDING = "recording"  # a district bulletin recorded for one relay occurrence
