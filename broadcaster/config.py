"""Load and validate config.toml into one typed settings object.

Every problem is reported at once, one line each, naming the file, the key
path and what is allowed, so an operator fixes a broken config in one pass
and nothing is written anywhere before the whole file is valid.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from broadcaster import overrides
from broadcaster.areas import Area, AreaKind, AreaRegistry, Station
from broadcaster.audio.settings import AudioSettings
from broadcaster.cadence import parse_duration
from broadcaster.levels import Ladder, Level
from broadcaster.occurrence import Relay
from broadcaster.sms.settings import SmsSettings

ENV_PREFIX = overrides.ENV_PREFIX
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$", min_length=1)]
LogLevel = Literal["debug", "info", "warning", "error"]


class ConfigError(Exception):
    """A config file that cannot be used; `problems` holds one line per fault."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class StorageSettings(_Model):
    url: str | None = None


class HttpSettings(_Model):
    bind: Annotated[str, StringConstraints(pattern=r"^[^:\s]+:\d{1,5}$")] = "127.0.0.1:8080"
    public_url: str | None = None


class LoggingSettings(_Model):
    file: Path | None = None
    level: LogLevel = "info"


class LevelConfig(_Model):
    name: str = Field(min_length=1)
    label: str = ""
    min_cases: int | None = Field(None, ge=0)


class LadderConfig(_Model):
    title: str = ""
    levels: list[LevelConfig | str] = Field(min_length=1)

    def to_ladder(self, name: str) -> Ladder:
        levels = tuple(
            Level(name=lv) if isinstance(lv, str) else Level(lv.name, lv.label, lv.min_cases)
            for lv in self.levels
        )
        return Ladder(name=name, title=self.title, levels=levels)


class StationConfig(_Model):
    code: Code
    name: str


class AreaConfig(_Model):
    code: Code
    name: str = Field(min_length=1)
    ladder: str | None = None
    level: str | None = None


class ProvinceConfig(AreaConfig):
    pass


class DistrictConfig(AreaConfig):
    province: str


class CommuneConfig(AreaConfig):
    district: str
    languages: list[str] = Field(default_factory=lambda: ["vi"], min_length=1)
    station: StationConfig | None = None


class AreasConfig(_Model):
    provinces: list[ProvinceConfig] = Field(min_length=1)
    districts: list[DistrictConfig] = Field(default_factory=list)
    communes: list[CommuneConfig] = Field(default_factory=list)


class CarrierConfig(_Model):
    host: str
    port: int = Field(ge=1, le=65535)
    system_id: str = Field(min_length=1, max_length=15)
    password: SecretStr = Field(max_length=8)
    source_addr: str = Field(min_length=1, max_length=20)
    rate: float = Field(gt=0, description="messages a second on this bind")
    window: int = Field(ge=1, le=1000, description="unanswered submit_sm at most")
    prefixes: list[Annotated[str, StringConstraints(pattern=r"^\+?\d{2,12}$")]] = Field(
        default_factory=list
    )
    price_per_part: float = Field(
        default=0.0, ge=0, description="what one SMS part costs on this carrier ([sms] currency)"
    )


class RelayConfig(_Model):
    """A stream stations relay live (`[relays.NAME]`), and the clip aired if it fails."""

    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2000)]
    fallback: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


DurationText = Annotated[str, StringConstraints(pattern=r"^(\d+h)?(\d+m)?(\d+s)?$", min_length=2)]
ChannelName = Literal["sms", "loudspeaker", "van", "relay", "task"]
DEFAULT_GRACE: dict[ChannelName, str] = {
    "sms": "30m",
    "loudspeaker": "5m",
    "van": "15m",
    "relay": "5m",
    "task": "1h",
}


class PlannerSettings(_Model):
    """Where schedules live and how the daemon plans and catches up (see programmes.py)."""

    schedules: Path = Path("schedules")  # relative to the config file's folder
    horizon: DurationText = "48h"  # how far ahead the daemon plans into the scheduler
    poll_interval: float = Field(default=0.5, gt=0, le=10)  # seconds between change polls
    # How late an occurrence may still go out after downtime; older ones are recorded missed.
    grace: dict[ChannelName, DurationText] = Field(default_factory=lambda: dict(DEFAULT_GRACE))
    task_timeout: DurationText = "5m"  # a task command or URL call longer than this fails
    # PostgreSQL: a standby ends the lock session of a leader silent this long (fencing.py).
    fence_after: DurationText = "15s"

    @model_validator(mode="after")
    def _fence_after_beats(self) -> PlannerSettings:
        if parse_duration(self.fence_after).total_seconds() < 6:
            raise ValueError("fence_after must be at least 6s: 3 heartbeats of 2 s")
        return self


class StationsSettings(_Model):
    """When the centre calls a station late or offline (see health.py)."""

    late_after: DurationText = "90s"  # no heartbeat or poll for this long: late
    offline_after: DurationText = "5m"  # and for this long: offline

    @model_validator(mode="after")
    def _ordered(self) -> StationsSettings:
        if parse_duration(self.offline_after) <= parse_duration(self.late_after):
            raise ValueError("offline_after must be longer than late_after")
        return self


class ReportSettings(_Model):
    """When the daemon writes the daily report (seed 002: before 08:30) into data_dir/reports."""

    at: str = Field(default="07:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # local HH:MM
    keep_days: int = Field(default=35, ge=2, le=3660)  # heartbeats kept this many days


NodeName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]


class Settings(_Model):
    timezone: str = "Asia/Ho_Chi_Minh"
    # This daemon's name in the `nodes` table (BROADCASTER_NODE); unset: the host name.
    node: NodeName | None = None
    data_dir: Path = Path("data")
    storage: StorageSettings = StorageSettings()
    http: HttpSettings = HttpSettings()
    logging: LoggingSettings = LoggingSettings()
    ladders: dict[str, LadderConfig] = Field(min_length=1)
    areas: AreasConfig
    carriers: dict[str, CarrierConfig] = Field(default_factory=dict)
    relays: dict[Code, RelayConfig] = Field(default_factory=dict)
    sms: SmsSettings = SmsSettings()
    planner: PlannerSettings = PlannerSettings()
    audio: AudioSettings = AudioSettings()
    stations: StationsSettings = StationsSettings()
    report: ReportSettings = ReportSettings()

    _path: Path = PrivateAttr(default=Path("config.toml"))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Asia/Ho_Chi_Minh'"
            ) from None
        return value

    @property
    def path(self) -> Path:
        return self._path

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def node_name(self) -> str:
        """The name this daemon beats under; several on one machine need their own."""
        return self.node or socket.gethostname()[:64]

    @property
    def storage_url(self) -> str:
        return self.storage.url or f"sqlite:///{self.data_dir / 'broadcaster.db'}"

    @property
    def log_file(self) -> Path:
        return self.logging.file or self.data_dir / "broadcaster.log"

    @property
    def public_url(self) -> str:
        return (self.http.public_url or f"http://{self.http.bind}").rstrip("/")

    def ladder_objects(self) -> dict[str, Ladder]:
        return {name: cfg.to_ladder(name) for name, cfg in self.ladders.items()}

    def relay_objects(self) -> dict[str, Relay]:
        return {name: Relay(name, cfg.url, cfg.fallback) for name, cfg in self.relays.items()}

    def registry(self) -> AreaRegistry:
        return _build_registry(self.areas)


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, override from BROADCASTER_* variables and credentials, validate, resolve paths."""
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    try:
        sources = overrides.apply(Settings, raw, environ)
    except overrides.OverrideError as exc:
        raise ConfigError([str(exc)]) from None
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            [
                f"{overrides.blame(e['loc'], sources) or path}: {_loc(e['loc'])}: {e['msg']}"
                for e in exc.errors()
            ]
        ) from None
    problems = [f"{path}: {line}" for line in _cross_check(settings)]
    if problems:
        raise ConfigError(problems)
    return _resolve_paths(settings, path)


def _loc(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _cross_check(settings: Settings) -> list[str]:
    """Find what pydantic cannot see: references between sections and duplicates."""
    problems: list[str] = []
    areas = settings.areas
    ladders = settings.ladders
    for name, ladder in ladders.items():
        names = [lv if isinstance(lv, str) else lv.name for lv in ladder.levels]
        for dup in _dupes(names):
            problems.append(f"ladders.{name}.levels: level {dup!r} appears more than once")
    codes = [a.code for a in (*areas.provinces, *areas.districts, *areas.communes)]
    for dup in _dupes(codes):
        problems.append(f"areas: area code {dup!r} is used more than once; codes must be unique")
    stations = [c.station.code for c in areas.communes if c.station]
    for dup in _dupes(stations):
        problems.append(f"areas.communes: station code {dup!r} is used more than once")
    province_codes = [p.code for p in areas.provinces]
    district_codes = [d.code for d in areas.districts]
    for i, d in enumerate(areas.districts):
        if d.province not in province_codes:
            problems.append(
                f"areas.districts[{i}].province: unknown province {d.province!r}; "
                f"known provinces: {', '.join(province_codes)}"
            )
    for i, c in enumerate(areas.communes):
        if c.district not in district_codes:
            problems.append(
                f"areas.communes[{i}].district: commune {c.code!r} is under no known "
                f"district ({c.district!r}); known districts: "
                f"{', '.join(district_codes) or 'none'}"
            )
    for i, p in enumerate(areas.provinces):
        if p.ladder is None:
            problems.append(f"areas.provinces[{i}].ladder: required; one of: {', '.join(ladders)}")
    if not problems:
        problems += _check_ladder_refs(settings)
    return problems


def _check_ladder_refs(settings: Settings) -> list[str]:
    problems: list[str] = []
    ladders = settings.ladder_objects()
    registry = settings.registry()
    groups: dict[str, Sequence[AreaConfig]] = {
        "provinces": settings.areas.provinces,
        "districts": settings.areas.districts,
        "communes": settings.areas.communes,
    }
    for group, items in groups.items():
        for i, cfg in enumerate(items):
            if cfg.ladder is not None and cfg.ladder not in ladders:
                problems.append(
                    f"areas.{group}[{i}].ladder: unknown ladder {cfg.ladder!r}; "
                    f"known ladders: {', '.join(ladders)}"
                )
            elif cfg.level is not None and registry.get(cfg.code).ladder in ladders:
                ladder = ladders[registry.get(cfg.code).ladder]
                if cfg.level not in ladder.names:
                    problems.append(
                        f"areas.{group}[{i}].level: unknown level {cfg.level!r} on "
                        f"ladder {ladder.name!r}; valid levels: "
                        f"{', '.join(ladder.names)}"
                    )
    return problems


def _dupes(values: Iterable[str]) -> list[str]:
    return [value for value, count in Counter(values).items() if count > 1]


def _build_registry(areas: AreasConfig) -> AreaRegistry:
    built: dict[str, Area] = {}
    for p in areas.provinces:
        built[p.code] = Area(p.code, p.name, AreaKind.PROVINCE, None, p.ladder or "", level=p.level)
    for d in areas.districts:
        parent = built.get(d.province)
        ladder = d.ladder or (parent.ladder if parent else "")
        built[d.code] = Area(d.code, d.name, AreaKind.DISTRICT, d.province, ladder, level=d.level)
    for c in areas.communes:
        parent = built.get(c.district)
        station = Station(c.station.code, c.station.name) if c.station else None
        built[c.code] = Area(
            c.code,
            c.name,
            AreaKind.COMMUNE,
            c.district,
            c.ladder or (parent.ladder if parent else ""),
            tuple(c.languages),
            station,
            c.level,
        )
    return AreaRegistry(built)


def _resolve_paths(settings: Settings, path: Path) -> Settings:
    """Make relative paths relative to the config file's folder, not the cwd."""
    base = path.resolve().parent
    data_dir = settings.data_dir if settings.data_dir.is_absolute() else base / settings.data_dir
    log_file = settings.logging.file
    if log_file is not None and not log_file.is_absolute():
        log_file = base / log_file
    url = settings.storage.url
    if url and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            url = f"sqlite:///{base / relative}"
    resolved = settings.model_copy(
        update={
            "data_dir": data_dir,
            "storage": settings.storage.model_copy(update={"url": url}),
            "logging": settings.logging.model_copy(update={"file": log_file}),
        }
    )
    resolved._path = path
    return resolved
