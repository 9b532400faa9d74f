"""What the reading commands need from the config, kept validated so they skip pydantic.

Importing pydantic and building the settings models costs more than
`broadcaster level show` may take in all. The reading commands need only the
time zone, the database URL, the data folder, the ladders and the area tree,
so `db upgrade` and `run` (which validate the config in full) save these,
normalised, as `settings-cache.json` in the data folder, and reading commands
take them from there when the cache was made from exactly the same input:

the key hashes the config file's resolved path and bytes, every `BROADCASTER_*`
variable, `$CREDENTIALS_DIRECTORY` and the files in it, the Python version and
the size and mtime of every module of this package (a code upgrade may validate
differently). Anything else, a missing or unreadable cache included, means a
full validation, so a cache can never hide a config error; it only saves time.
Reading commands never write the cache (they create no files).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from broadcaster.areas import Area, AreaKind, AreaRegistry, Station
from broadcaster.levels import Ladder, Level

if TYPE_CHECKING:
    from broadcaster.config import Settings

CACHE_NAME = "settings-cache.json"
ENV_PREFIX = "BROADCASTER_"  # of every variable that sets a config key (overrides.py)
CREDENTIALS = "CREDENTIALS_DIRECTORY"  # systemd's folder of credential files
PACKAGE = Path(__file__).parent
_TABLE = re.compile(rb"^[ \t]*\[", re.MULTILINE)  # the first table ends the top-level keys
_DATA_DIR = re.compile(rb"""^data_dir\s*=\s*(["'])([^"'\\\n]*)\1\s*(?:#.*)?$""", re.MULTILINE)


@dataclass(frozen=True)
class Essentials:
    """The validated settings a reading command uses."""

    timezone: str
    storage_url: str
    data_dir: Path
    ladders: dict[str, Ladder]
    registry: AreaRegistry

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def of(cls, settings: Settings) -> Essentials:
        return cls(
            settings.timezone,
            settings.storage_url,
            settings.data_dir,
            settings.ladder_objects(),
            settings.registry(),
        )


def default_config_path() -> Path:
    """The config an operator means when they name none: ./config.toml, else /etc."""
    env = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if env:
        return Path(env)
    local = Path("config.toml")
    return local if local.exists() else Path("/etc/broadcaster/config.toml")


def cached(config_path: Path, environ: Mapping[str, str] | None = None) -> Essentials | None:
    """The essentials saved for exactly this config and environment, else None."""
    environ = os.environ if environ is None else environ
    try:
        content = config_path.read_bytes()
        data_dir = environ.get(f"{ENV_PREFIX}DATA_DIR") or _data_dir_line(content) or "data"
        folder = config_path.resolve().parent / data_dir
        saved = json.loads((folder / CACHE_NAME).read_text(encoding="utf-8"))
        if saved.get("key") != _key(config_path, content, environ):
            return None
        return _decode(saved["essentials"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _data_dir_line(content: bytes) -> str | None:
    """`data_dir` as a plain top-level line says, found without parsing the whole file
    (parsing a config with hundreds of communes costs more than the rest of a
    reading command). A value written otherwise only makes the lookup miss."""
    table = _TABLE.search(content)
    match = _DATA_DIR.search(content[: table.start() if table else None])
    return match.group(2).decode("utf-8") if match else None


def save(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Save the essentials of freshly validated `settings` into the data folder."""
    environ = os.environ if environ is None else environ
    content = settings.path.read_bytes()
    document = {
        "key": _key(settings.path, content, environ),
        "essentials": _encode(Essentials.of(settings)),
    }
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    target = settings.data_dir / CACHE_NAME
    partial = target.with_name(f".{CACHE_NAME}.{os.getpid()}")
    partial.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    partial.replace(target)


def _key(config_path: Path, content: bytes, environ: Mapping[str, str]) -> str:
    digest = hashlib.sha256()

    def add(*parts: object) -> None:
        for part in parts:
            digest.update(part if isinstance(part, bytes) else repr(part).encode())
            digest.update(b"\0")

    add(str(config_path.resolve()), content, sys.version)
    add(sorted((k, v) for k, v in environ.items() if k.startswith(ENV_PREFIX)))
    credentials = environ.get(CREDENTIALS)
    add(credentials)
    if credentials and Path(credentials).is_dir():
        for file in sorted(Path(credentials).iterdir()):
            add(file.name, file.read_bytes() if file.is_file() else b"")
    add(sorted(_module_stats(str(PACKAGE))))
    return digest.hexdigest()


def _module_stats(folder: str) -> Iterator[tuple[str, int, int]]:
    """Path, size and mtime of every module under `folder` (os.scandir: pathlib costs more)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir() and entry.name != "__pycache__":
                yield from _module_stats(entry.path)
            elif entry.name.endswith(".py"):
                stat = entry.stat()
                yield entry.path, stat.st_size, stat.st_mtime_ns


def _encode(essentials: Essentials) -> dict[str, Any]:
    return {
        "timezone": essentials.timezone,
        "storage_url": essentials.storage_url,
        "data_dir": str(essentials.data_dir),
        "ladders": {
            name: [ladder.title, [[lv.name, lv.label, lv.min_cases] for lv in ladder.levels]]
            for name, ladder in essentials.ladders.items()
        },
        "areas": [
            [
                a.code,
                a.name,
                a.kind.value,
                a.parent,
                a.ladder,
                list(a.languages),
                [a.station.code, a.station.name] if a.station else None,
                a.level,
            ]
            for a in essentials.registry.areas.values()
        ],
    }


def _decode(data: dict[str, Any]) -> Essentials:
    ladders = {
        name: Ladder(name, title, tuple(Level(*level) for level in levels))
        for name, (title, levels) in data["ladders"].items()
    }
    areas = {
        code: Area(
            code,
            name,
            AreaKind(kind),
            parent,
            ladder,
            tuple(languages),
            Station(*station) if station else None,
            level,
        )
        for code, name, kind, parent, ladder, languages, station, level in data["areas"]
    }
    return Essentials(
        data["timezone"], data["storage_url"], Path(data["data_dir"]), ladders, AreaRegistry(areas)
    )
