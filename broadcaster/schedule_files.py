"""Schedule files (`schedules/*.toml`) → validated, frozen programme objects.

A file holds one or more `[[programme]]` tables. Pydantic checks each table's
shape; a second pass checks what needs the area registry and the ladders
(selectors, level names, content per channel, quiet hours). Every problem is
reported at once, each naming the file, the line and id of the programme, the
key path and what is allowed, and nothing is returned unless all files are
valid, so a bad edit never half-replaces a running schedule.

Area selectors (strings in `areas` and `exclude`):
  "05437"            that area itself (commune, district or province)
  "167/communes"     every commune under area 167 (a commune selects itself)
  "19/districts"     every district under area 19
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from broadcaster.areas import AreaKind, AreaRegistry
from broadcaster.cadence import (
    WEEKDAYS,
    Cadence,
    QuietHours,
    every,
    parse_duration,
    parse_time,
    spread,
)
from broadcaster.config import Settings
from broadcaster.levels import Ladder
from broadcaster.occurrence import Channel, Clips, Content, Priority, Relay, SmsText, Task
from broadcaster.programmes import Programme, Trigger


class ScheduleError(Exception):
    """Schedule files that cannot be used; `problems` holds one line per fault."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# --- the file format, checked by pydantic ----------------------------------

Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]
TimeText = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")]
DurationText = Annotated[str, StringConstraints(pattern=r"^(\d+h)?(\d+m)?(\d+s)?$", min_length=2)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _not_the_daemons(name: str) -> str:
    if name.startswith("BROADCASTER_"):
        raise ValueError(
            f"{name!r}: BROADCASTER_* names are the daemon's settings and secrets, "
            "never given to a task"
        )
    return name


# An environment variable a task command may be given; the daemon's own (BROADCASTER_*,
# which carry carrier passwords and the token secret) are never handed to a task.
EnvName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128),
    AfterValidator(_not_the_daemons),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CadenceModel(_Model):
    times: list[TimeText] | None = Field(None, min_length=1)
    per_day: int | None = Field(None, ge=1, le=288)
    window: tuple[TimeText, TimeText] | None = None
    every: DurationText | None = None
    anchor: TimeText = "00:00"
    off: bool = False
    days: list[Weekday] | None = Field(None, min_length=1)
    valid_from: date | None = Field(None, alias="from")
    valid_until: date | None = Field(None, alias="until")
    duration: DurationText | None = None


class ContentModel(_Model):
    clips: list[Annotated[str, StringConstraints(min_length=1)]] | None = Field(None, min_length=1)
    text: Annotated[str, StringConstraints(min_length=1)] | None = None
    relay: Annotated[str, StringConstraints(min_length=1)] | None = None
    command: list[str] | None = Field(None, min_length=1)
    url: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    env: dict[EnvName, Annotated[str, StringConstraints(max_length=4096)]] | None = None
    pass_env: list[EnvName] | None = None


class ProgrammeModel(_Model):
    id: Id
    title: str = ""
    channel: Channel
    priority: Priority = Priority.NORMAL
    trigger: Trigger = Trigger.SCHEDULE
    areas: list[str] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)
    ladder: str | None = None
    duration: DurationText | None = None
    content: ContentModel
    levels: dict[str, CadenceModel] = Field(default_factory=dict)


class FileModel(_Model):
    programme: list[ProgrammeModel] = Field(min_length=1)


_CONTENT_BY_CHANNEL: dict[Channel, tuple[str, ...]] = {
    Channel.SMS: ("text",),
    Channel.LOUDSPEAKER: ("clips",),
    Channel.VAN: ("clips",),
    Channel.RELAY: ("relay",),
    Channel.TASK: ("command", "url"),
}
_COMMAND_OPTIONS = ("env", "pass_env")


# --- loading ------------------------------------------------------------------


def load_schedules(
    directory: Path,
    registry: AreaRegistry,
    ladders: Mapping[str, Ladder],
    quiet: QuietHours,
    relays: Mapping[str, Relay],
) -> tuple[Programme, ...]:
    """Read every `*.toml` in `directory`; raise ScheduleError listing all problems."""
    files = sorted(Path(directory).glob("*.toml"))
    if not files:
        raise ScheduleError([f"{directory}: no schedule files (*.toml) found"])
    problems: list[str] = []
    programmes: list[Programme] = []
    seen: dict[str, Path] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            loaded = parse_schedule(path, text, registry, ladders, quiet, relays)
        except ScheduleError as exc:
            problems += exc.problems
            continue
        for programme in loaded:
            if programme.id in seen:
                problems.append(
                    f"{path}: programme {programme.id!r}: id is already used in "
                    f"{seen[programme.id]}; ids must be unique across files"
                )
            seen[programme.id] = path
            programmes.append(programme)
    if problems:
        raise ScheduleError(problems)
    return tuple(programmes)


def parse_schedule(
    path: Path,
    text: str,
    registry: AreaRegistry,
    ladders: Mapping[str, Ladder],
    quiet: QuietHours,
    relays: Mapping[str, Relay],
) -> list[Programme]:
    """Validate one schedule file's text; `path` only names it in messages."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleError([f"{path}: not valid TOML: {exc}"]) from None
    try:
        model = FileModel.model_validate(raw)
    except ValidationError as exc:
        raise ScheduleError([_pydantic_problem(path, text, raw, e) for e in exc.errors()]) from None
    problems: list[str] = []
    programmes = []
    for index, item in enumerate(model.programme):
        where = _where(path, text, index, item.id)
        found, programme = _build(item, registry, ladders, quiet, relays, path)
        problems += [f"{where}: {line}" for line in found]
        if programme is not None:
            programmes.append(programme)
    if problems:
        raise ScheduleError(problems)
    return programmes


def _where(path: Path, text: str, index: int, programme_id: str | None) -> str:
    """Name a programme in a message: file, line of its id, id and array index."""
    if programme_id is None:
        return f"{path}: programme[{index}]"
    match = re.search(rf"^\s*id\s*=\s*[\"']{re.escape(programme_id)}[\"']", text, re.MULTILINE)
    line = f":{text.count(chr(10), 0, match.start()) + 1}" if match else ""
    return f"{path}{line}: programme {programme_id!r} (programme[{index}])"


def _pydantic_problem(path: Path, text: str, raw: dict[str, Any], error: Any) -> str:
    loc = list(error["loc"])
    if len(loc) >= 2 and loc[0] == "programme" and isinstance(loc[1], int):
        items = raw.get("programme", [])
        item = items[loc[1]] if loc[1] < len(items) and isinstance(items[loc[1]], dict) else {}
        programme_id = item.get("id") if isinstance(item.get("id"), str) else None
        head = _where(path, text, loc[1], programme_id)
        loc = loc[2:]
    else:
        head = str(path)
    return f"{head}: {_key_path(loc)}: {_explain(error)}"


def _key_path(parts: Sequence[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = f'"{part}"' if "." in str(part) else str(part)
            out += f".{name}" if out else name
    return out or "(top level)"


def _explain(error: Any) -> str:
    """Say what is allowed, not only what is wrong."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        hints = {
            "[01]": "use HH:MM from 00:00 to 23:59",
            "(\\d+h)": "use a duration such as '15m', '6h', '1h30m'",
            "a-z0-9": "use lowercase letters, digits, '-', '_' or '.'",
            "https?": "use an http:// or https:// URL",
            "[A-Za-z_]": "use a variable name: letters, digits and '_'",
        }
        for needle, hint in hints.items():
            if needle in pattern:
                return f"{error['input']!r} is not allowed; {hint}"
    return str(error["msg"])


def _build(
    item: ProgrammeModel,
    registry: AreaRegistry,
    ladders: Mapping[str, Ladder],
    quiet: QuietHours,
    relays: Mapping[str, Relay],
    path: Path,
) -> tuple[list[str], Programme | None]:
    problems = _check_content(item)
    if not problems and item.content.relay is not None and item.content.relay not in relays:
        problems.append(
            f"content.relay: unknown relay {item.content.relay!r}; name one of "
            f"[relays.NAME] in the config: {', '.join(relays) or 'none configured'}"
        )
    areas, area_problems = _select(item, registry)
    problems += area_problems
    ladder, ladder_problems = _ladder_of(item, areas, registry, ladders)
    problems += ladder_problems
    if ladder is None:
        return problems, None
    cadences, cadence_problems = _cadences(item, ladder)
    problems += cadence_problems
    if not problems:
        problems += _check_quiet_hours(item, cadences, quiet)
    if problems:
        return problems, None
    return [], Programme(
        id=item.id,
        title=item.title or item.id,
        channel=item.channel,
        priority=item.priority,
        trigger=item.trigger,
        areas=areas,
        content=_content(item.content, relays),
        duration=parse_duration(item.duration) if item.duration else None,
        ladder=ladder.name,
        cadences=cadences,
        file=path,
    )


def _content(model: ContentModel, relays: Mapping[str, Relay]) -> Content:
    """The one content variant the channel takes (`_check_content` made sure of it)."""
    if model.clips is not None:
        return Clips(tuple(model.clips))
    if model.relay is not None:
        return relays[model.relay]
    if model.text is not None:
        return SmsText(model.text)
    return Task(
        tuple(model.command or ()),
        model.url,
        tuple(sorted((model.env or {}).items())),
        tuple(model.pass_env or ()),
    )


def _check_content(item: ProgrammeModel) -> list[str]:
    allowed = _CONTENT_BY_CHANNEL[item.channel]
    given = [key for key, value in item.content if value is not None]
    options = [key for key in given if key in _COMMAND_OPTIONS]
    given = [key for key in given if key not in _COMMAND_OPTIONS]
    problems = [
        f"content.{key}: not used by a {item.channel.value!r} programme; "
        f"it takes {' or '.join(allowed)}"
        for key in given
        if key not in allowed
    ]
    if options and item.content.command is None:
        problems += [f"content.{key}: only a task with a command takes it" for key in options]
    chosen = [key for key in given if key in allowed]
    if len(chosen) != 1:
        problems.append(
            f"content: a {item.channel.value!r} programme needs exactly one of {', '.join(allowed)}"
        )
    return problems


def _select(item: ProgrammeModel, registry: AreaRegistry) -> tuple[tuple[str, ...], list[str]]:
    """Resolve `areas` minus `exclude` to area codes, in registry order."""
    problems: list[str] = []
    chosen: set[str] = set()
    removed: set[str] = set()
    for key, selectors, into in (("areas", item.areas, chosen), ("exclude", item.exclude, removed)):
        for i, selector in enumerate(selectors):
            try:
                into.update(_expand(selector, registry))
            except ValueError as exc:
                problems.append(f"{key}[{i}]: {exc}")
    order = [area.code for area in registry.all() if area.code in chosen - removed]
    if not problems and not order:
        problems.append("areas: the selectors leave no area after 'exclude'")
    return tuple(order), problems


def _expand(selector: str, registry: AreaRegistry) -> list[str]:
    code, _, kind = selector.partition("/")
    if code not in registry:
        known = sorted(a.code for a in registry.all() if a.kind is not AreaKind.COMMUNE)
        raise ValueError(
            f"unknown area {code!r} in selector {selector!r}; use an area code, "
            f"'CODE/communes' or 'CODE/districts' (districts and provinces: "
            f"{', '.join(known)})"
        )
    if not kind:
        return [code]
    if kind == "communes":
        return [area.code for area in registry.communes_under(code)]
    if kind == "districts":
        return [a.code for a in registry.descendants(code) if a.kind is AreaKind.DISTRICT]
    raise ValueError(f"unknown selector {selector!r}; after '/' use 'communes' or 'districts'")


def _ladder_of(
    item: ProgrammeModel,
    areas: Sequence[str],
    registry: AreaRegistry,
    ladders: Mapping[str, Ladder],
) -> tuple[Ladder | None, list[str]]:
    if item.ladder is not None and item.ladder not in ladders:
        return None, [f"ladder: unknown ladder {item.ladder!r}; known: {', '.join(ladders)}"]
    found = sorted({registry.get(code).ladder for code in areas})
    name = item.ladder or (found[0] if len(found) == 1 else None)
    if name is None:
        return None, (
            [
                f"areas: the areas use several ladders ({', '.join(found)}); "
                "target one ladder per programme"
            ]
            if found
            else []
        )
    other = [code for code in areas if registry.get(code).ladder != name]
    if other:
        return None, [f"areas: {', '.join(other[:5])} are not on ladder {name!r}"]
    return ladders[name], []


def _cadences(item: ProgrammeModel, ladder: Ladder) -> tuple[dict[str, Cadence | None], list[str]]:
    """Expand the written levels to every level of the ladder ("holds until overridden")."""
    problems: list[str] = []
    written: dict[str, Cadence | None] = {}
    for level, model in item.levels.items():
        key = f'levels."{level}"'
        if level not in ladder.names:
            problems.append(
                f"{key}: unknown level on ladder {ladder.name!r}; "
                f"valid levels: {', '.join(ladder.names)}"
            )
            continue
        try:
            written[level] = _cadence(model, level)
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
    if item.trigger is Trigger.NOTICE and item.levels:
        problems.append(
            "levels: a programme with trigger = 'notice' is sent per notice and takes no cadences"
        )
    if item.trigger is Trigger.SCHEDULE and not item.levels:
        problems.append(
            "levels: add at least one level's cadence, e.g. "
            f'[programme.levels."{ladder.names[0]}"] times = ["06:00"]'
        )
    expanded: dict[str, Cadence | None] = {}
    current: Cadence | None = None
    for level in ladder.names:
        current = written.get(level, current)
        expanded[level] = current
    return expanded, problems


def _cadence(model: CadenceModel, level: str) -> Cadence | None:
    forms = [
        name
        for name, value in (
            ("times", model.times),
            ("per_day", model.per_day),
            ("every", model.every),
        )
        if value is not None
    ]
    if model.off:
        if forms:
            raise ValueError(f"'off = true' cannot be combined with {', '.join(forms)}")
        return None
    if len(forms) != 1:
        raise ValueError(
            "give exactly one of: times = ['06:00', …]; per_day = N with "
            "window = ['HH:MM', 'HH:MM']; every = '6h' (with anchor); off = true"
        )
    if model.per_day is not None:
        if model.window is None:
            raise ValueError("per_day needs window = ['first', 'last'], e.g. ['07:00', '19:00']")
        first, last = parse_time(model.window[0]), parse_time(model.window[1])
        if last <= first and model.per_day > 1:
            raise ValueError("window: the last slot must be later the same day than the first")
        times = spread(model.per_day, first, last)
    elif model.every is not None:
        times = every(parse_duration(model.every), parse_time(model.anchor))
    else:
        times = tuple(parse_time(t) for t in model.times or ())
    if model.valid_from and model.valid_until and model.valid_until < model.valid_from:
        raise ValueError("until: earlier than from")
    return Cadence(
        times=tuple(sorted(set(times))),
        weekdays=frozenset(WEEKDAYS.index(d) for d in model.days) if model.days else None,
        valid_from=model.valid_from,
        valid_until=model.valid_until,
        duration=parse_duration(model.duration) if model.duration else None,
        level=level,
    )


def _check_quiet_hours(
    item: ProgrammeModel, cadences: Mapping[str, Cadence | None], quiet: QuietHours
) -> list[str]:
    """Refuse routine SMS slots in quiet hours; only emergency SMS may wake people."""
    if item.channel is not Channel.SMS or item.priority is Priority.EMERGENCY:
        return []
    problems = []
    for level, cadence in cadences.items():
        if cadence is None or cadence.level != level:
            continue
        bad = [t.strftime("%H:%M") for t in cadence.times if quiet.contains(t)]
        if bad:
            problems.append(
                f'levels."{level}": routine SMS at {", ".join(bad)} falls in quiet '
                f"hours {quiet.describe()}; move it or set priority = 'emergency'"
            )
    return problems


def schedule_dir(settings: Settings) -> Path:
    """The schedules folder; a relative one is relative to the config file's folder."""
    folder = settings.planner.schedules
    return folder if folder.is_absolute() else settings.path.resolve().parent / folder


def quiet_hours(settings: Settings) -> QuietHours:
    """One setting for both: the planner refuses what the senders would hold back."""
    return settings.sms.quiet()


def load_programmes(settings: Settings) -> tuple[Programme, ...]:
    """Load the configured schedules against the configured areas and ladders."""
    return load_schedules(
        schedule_dir(settings),
        settings.registry(),
        settings.ladder_objects(),
        quiet_hours(settings),
        settings.relay_objects(),
    )
