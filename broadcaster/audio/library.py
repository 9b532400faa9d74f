"""The clip catalogue: what each audio file says, in which language, and until when.

The catalogue is `library.toml` next to the audio files, so the files and what
describes them travel together (a commune can be handed the folder). Duration
and a SHA-256 of the content are computed on import: playlists need durations
to keep slots within their time, and the hash keys the loudness cache and the
content-addressed files stations fetch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from broadcaster.audio.kinds import ClipKind

CATALOGUE = "library.toml"
CLIP_ID = r"^[a-z0-9][a-z0-9_.-]*$"
LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$"


class LibraryError(Exception):
    """A catalogue or clip that cannot be used; the message names file, entry and key."""


@dataclass(frozen=True)
class Clip:
    """One recording; language variants of the same words share `id`."""

    id: str
    language: str
    kind: ClipKind
    title: str
    file: Path
    duration: float
    sha256: str
    valid_from: date | None = None
    valid_until: date | None = None
    for_programme: str | None = None  # a recording: the relay programme it stands in for
    airs_at: datetime | None = None  # … and the occurrence's instant

    def valid_on(self, day: date) -> bool:
        """Say whether the clip may air on `day` (both ends inclusive)."""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


@dataclass(frozen=True)
class Library:
    """All clips, looked up by (id, language)."""

    root: Path
    clips: tuple[Clip, ...]
    _index: dict[tuple[str, str], Clip] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {(c.id, c.language): c for c in self.clips})

    def variant(self, clip_id: str, language: str, day: date) -> Clip | None:
        """Return the clip for `clip_id` in `language` if one exists and is valid on `day`."""
        clip = self._index.get((clip_id, language))
        return clip if clip is not None and clip.valid_on(day) else None

    def ids(self) -> set[str]:
        return {c.id for c in self.clips}

    def path(self, clip: Clip) -> Path:
        return self.root / clip.file

    def with_clips(self, extra: tuple[Clip, ...], root: Path | None = None) -> Library:
        """Return a library that also holds `extra` (files stored elsewhere, by absolute path)."""
        return Library(root or self.root, self.clips + extra)


def overlaid(library: Library, shared: tuple[Clip, ...]) -> Library:
    """The folder's clips with the shared ones laid over them. A clip imported on any
    node replaces the folder's of the same id and language; when both hold the same bytes
    the folder's file is used under the shared entry (no copy). Pure."""
    own = {(c.id, c.language): c for c in library.clips}
    merged = dict(own)
    for clip in shared:
        mine = own.get((clip.id, clip.language))
        if mine is not None and mine.sha256 == clip.sha256:
            clip = replace(clip, file=mine.file)
        merged[(clip.id, clip.language)] = clip
    return Library(library.root, tuple(merged.values()))


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=CLIP_ID)
    language: str = Field(pattern=LANGUAGE)
    kind: ClipKind
    title: str = Field(min_length=1)
    file: str = Field(min_length=1)
    duration: float = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    valid_from: date | None = None
    valid_until: date | None = None
    for_programme: str | None = Field(None, pattern=CLIP_ID)
    airs_at: AwareDatetime | None = None


def load_library(root: Path) -> Library:
    """Read `root/library.toml`; every fault is reported, one line each."""
    path = root / CATALOGUE
    if not path.exists():
        return Library(root, ())
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise LibraryError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(raw) - {"clip"}
    problems = [f"{path}: unknown key {key!r}; only [[clip]] tables belong here" for key in unknown]
    clips: list[Clip] = []
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(raw.get("clip", [])):
        try:
            entry = _Entry.model_validate(item)
        except ValidationError as exc:
            problems += [
                f"{path}: clip[{i}].{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in exc.errors()
            ]
            continue
        clip = Clip(**{**entry.model_dump(), "file": Path(entry.file)})
        problems += _entry_problems(root, path, i, clip, seen)
        seen.add((clip.id, clip.language))
        clips.append(clip)
    if problems:
        raise LibraryError("\n".join(problems))
    return Library(root, tuple(clips))


def _entry_problems(
    root: Path, path: Path, i: int, clip: Clip, seen: set[tuple[str, str]]
) -> list[str]:
    problems = []
    if (clip.id, clip.language) in seen:
        problems.append(
            f"{path}: clip[{i}]: id {clip.id!r} in language {clip.language!r} "
            "appears twice; each language variant of an id appears once"
        )
    if clip.file.is_absolute() or ".." in clip.file.parts:
        problems.append(
            f"{path}: clip[{i}].file: {str(clip.file)!r} must be a plain name "
            "inside the library folder"
        )
    elif not (root / clip.file).is_file():
        problems.append(f"{path}: clip[{i}].file: {str(clip.file)!r} does not exist")
    if clip.valid_from and clip.valid_until and clip.valid_until < clip.valid_from:
        problems.append(f"{path}: clip[{i}].valid_until: before valid_from")
    if (clip.kind is ClipKind.RECORDING) != (clip.for_programme is not None) or (
        (clip.for_programme is None) != (clip.airs_at is None)
    ):
        problems.append(
            f"{path}: clip[{i}]: a 'recording' clip, and only one, names both "
            "for_programme and airs_at"
        )
    return problems


def save_library(library: Library) -> None:
    """Write the catalogue atomically so a crash never leaves half a file."""
    entries = []
    for clip in sorted(library.clips, key=lambda c: (c.id, c.language)):
        entry = {
            "id": clip.id,
            "language": clip.language,
            "kind": clip.kind.value,
            "title": clip.title,
            "file": str(clip.file),
            "duration": round(clip.duration, 3),
            "sha256": clip.sha256,
        }
        entry |= {
            k: v
            for k in ("valid_from", "valid_until", "for_programme", "airs_at")
            if (v := getattr(clip, k))
        }
        entries.append(entry)
    text = "# Clip catalogue, written by `broadcaster audio import`.\n" + tomli_w.dumps(
        {"clip": entries}
    )
    write_atomic(library.root / CATALOGUE, text.encode("utf-8"))


def catalogue_entry(
    held: Library,
    source: Path,
    *,
    clip_id: str | None,
    title: str,
    language: str,
    kind: ClipKind,
    valid_from: date | None = None,
    valid_until: date | None = None,
    replace: bool = False,
    recorded_for: tuple[str, datetime] | None = None,
) -> Clip:
    """Describe `source` as a clip (duration and hash measured), refusing bad ids and
    languages, undecodable audio, and an id `held` already has unless `replace`."""
    if not source.is_file():
        raise LibraryError(f"{source}: no such audio file")
    clip_id = clip_id or _slug(source.stem)
    if not re.match(CLIP_ID, clip_id):
        raise LibraryError(f"--id {clip_id!r}: use lowercase letters, digits, '.', '_' or '-'")
    if not re.match(LANGUAGE, language):
        raise LibraryError(f"--language {language!r}: use an ISO 639 code such as vi or tyz")
    existing = next((c for c in held.clips if (c.id, c.language) == (clip_id, language)), None)
    if existing and not replace:
        raise LibraryError(
            f"clip {clip_id!r} in {language!r} is already in the library "
            f"({existing.file.name}); pass --replace to swap it"
        )
    return Clip(
        clip_id,
        language,
        kind,
        title,
        Path(f"{clip_id}.{language}{source.suffix.lower()}"),
        probe_duration(source),
        file_sha256(source),
        valid_from,
        valid_until,
        *(recorded_for or (None, None)),
    )


def import_clip(library: Library, source: Path, **entry: Any) -> tuple[Library, Clip]:
    """Copy `source` into the library folder and catalogue it (`catalogue_entry`'s
    keywords): the way to add a clip where there is no database."""
    clip = catalogue_entry(library, source, **entry)
    library.root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, library.root / clip.file)
    kept = tuple(c for c in library.clips if (c.id, c.language) != (clip.id, clip.language))
    updated = Library(library.root, kept + (clip,))
    save_library(updated)
    return updated, clip


def probe_duration(path: Path) -> float:
    """Ask ffprobe how long the audio lasts; refuse files it cannot decode."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return float(json.loads(result.stdout)["format"]["duration"])
    except (KeyError, ValueError, TypeError):
        raise LibraryError(f"{path}: not audio ffprobe can read: {result.stderr.strip()}") from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path | str, data: bytes) -> None:
    """Write through a temporary file in the same folder, then rename over the target.

    The temporary name carries the process id: two processes never share one,
    and one process publishes one thing at a time. Plain `os` calls on text
    paths: a publication writes 10,000 of these and pathlib's parsing showed.
    """
    folder, name = os.path.split(os.fspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = os.open(tmp, flags, 0o644)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(tmp, flags, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.") or "clip"
