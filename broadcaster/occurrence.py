"""What the planner hands to every consumer: one occurrence, with typed content. Pure.

The planner, the clash check, the playlist builder, the publisher, the SMS
handler and the task runner all take this one type. Its content is a tagged
union, each variant carrying a literal `kind`, as LibreTime's player types its
events (`playout/libretime_playout/player/events.py`: `AnyEvent = FileEvent |
WebStreamEvent | ActionEvent`, each with a literal `type`), so a consumer
matches on the variant it handles instead of guessing a shape, and plan.json
is checked once when read back (`content_from_json`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal


class Channel(StrEnum):
    SMS = "sms"
    LOUDSPEAKER = "loudspeaker"
    VAN = "van"
    RELAY = "relay"
    TASK = "task"


class Priority(StrEnum):
    """Bulletin classes of Circular 39/2020: normal, priority, emergency."""

    NORMAL = "normal"
    PRIORITY = "priority"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        """Sort key: emergency airs first."""
        return _RANK[self]


_RANK = {Priority.EMERGENCY: 0, Priority.PRIORITY: 1, Priority.NORMAL: 2}


@dataclass(frozen=True, slots=True)
class Clips:
    """Library clips aired one after another, each in every language the commune speaks."""

    clips: tuple[str, ...]
    kind: Literal["clips"] = "clips"


@dataclass(frozen=True, slots=True)
class Relay:
    """A live stream relayed for the occurrence's length; `fallback` airs if it fails.

    `name` is the `[relays.NAME]` of the config, `url` its stream, `fallback`
    a library clip id (None when the config gives none).
    """

    name: str
    url: str
    fallback: str | None = None
    kind: Literal["relay"] = "relay"


@dataclass(frozen=True, slots=True)
class SmsText:
    """The text of an SMS; `{text}` in a notice programme's text is the notice's."""

    text: str
    kind: Literal["sms"] = "sms"


@dataclass(frozen=True, slots=True)
class Task:
    """A command to run or a URL to call; a command gets only the environment it names:
    `env` set for it, `pass_env` copied from the daemon's (see `dispatch.task_environment`)."""

    command: tuple[str, ...] = ()
    url: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    pass_env: tuple[str, ...] = ()
    kind: Literal["task"] = "task"


Content = Clips | Relay | SmsText | Task


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One thing to air or send: a programme, in one area, at one instant (UTC)."""

    programme: str
    channel: Channel
    area: str
    at: datetime
    priority: Priority
    content: Content
    duration: timedelta | None = None
    level: str = ""

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError(
                f"occurrence of {self.programme!r} at {self.at}: naive datetime; "
                "times must carry a zone"
            )

    @property
    def key(self) -> tuple[str, str, datetime]:
        """The dispatch key: the database refuses a second row with it."""
        return (self.programme, self.area, self.at)


def content_to_json(content: Content) -> dict[str, Any]:
    """The content as a JSON object tagged by `kind`."""
    match content:
        case Clips(clips):
            return {"kind": "clips", "clips": list(clips)}
        case Relay(name, url, fallback):
            return {"kind": "relay", "name": name, "url": url, "fallback": fallback}
        case SmsText(text):
            return {"kind": "sms", "text": text}
        case Task(command, url, env, pass_env):
            return {
                "kind": "task",
                "command": list(command),
                "url": url,
                "env": dict(env),
                "pass_env": list(pass_env),
            }


def content_from_json(raw: Any) -> Content:
    """Read content written by `content_to_json`; anything else is a ValueError."""
    if not isinstance(raw, dict):
        raise ValueError(f"content must be an object with a 'kind', not {raw!r}")
    kind = raw.get("kind")
    if kind == "clips":
        return Clips(tuple(_strings(raw.get("clips"), "clips")))
    if kind == "relay":
        return Relay(
            _string(raw.get("name"), "name"),
            _string(raw.get("url"), "url"),
            _optional(raw.get("fallback"), "fallback"),
        )
    if kind == "sms":
        return SmsText(_string(raw.get("text"), "text"))
    if kind == "task":
        env = raw.get("env", {})
        if not isinstance(env, dict):
            raise ValueError(f"content.env must be an object, not {env!r}")
        return Task(
            tuple(_strings(raw.get("command", []), "command")),
            _optional(raw.get("url"), "url"),
            tuple(sorted((k, _string(v, f"env.{k}")) for k, v in env.items())),
            tuple(_strings(raw.get("pass_env", []), "pass_env")),
        )
    raise ValueError(f"content kind {kind!r} is unknown; one of clips, relay, sms, task")


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"content.{key} must be a string, not {value!r}")
    return value


def _optional(value: Any, key: str) -> str | None:
    return None if value is None else _string(value, key)


def _strings(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"content.{key} must be a list of strings, not {value!r}")
    return value
