"""The library a node airs from: its own folder with the live imports laid over it.

A clip imported on one node must air whichever node schedules, so imports are
kept in the database (`store.library`, bytes in `published_audio`), and each
node copies the bytes it lacks into `data_dir/library/` once, by hash. Only
live versions air: approved by a second account, unless the config waives it.
Without a database (files only) the folder is the whole library.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from broadcaster.audio.kinds import ClipKind
from broadcaster.audio.library import Clip, Library, load_library, overlaid
from broadcaster.audio.settings import library_dir
from broadcaster.store import published
from broadcaster.store.library import SharedClip, live_clips

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from broadcaster.config import Settings

log = structlog.get_logger(__name__)


def node_library(settings: Settings, engine: Engine | None, *, fetch: bool = True) -> Library:
    """The folder's catalogue with the shared clips over it; a shared clip whose bytes
    this node cannot get is left out (the folder's version, if any, stays) and logged.
    `fetch=False` is for readers of entries only (slot layouts, listings): it writes
    nothing, so it works for a login that may not write `data_dir`."""
    folder = load_library(library_dir(settings.audio, settings.path))
    if engine is None:
        return folder
    cache = settings.data_dir / "library"
    library = overlaid(folder, tuple(_clip(s, cache) for s in live_clips(engine)))
    if not fetch:
        return library
    missing = [c for c in library.clips if c.file.is_absolute() and not _fetched(engine, c)]
    if not missing:
        return library
    for clip in missing:
        log.error("audio.shared_clip_missing", clip=clip.id, language=clip.language)
    dropped = {(c.id, c.language) for c in missing}
    kept = tuple(c for c in folder.clips if (c.id, c.language) in dropped)
    return Library(
        library.root,
        tuple(c for c in library.clips if (c.id, c.language) not in dropped) + kept,
    )


def shared_form(clip: Clip, source: Path) -> SharedClip:
    """What the database keeps of an imported clip (its bytes go by hash)."""
    return SharedClip(
        clip.id,
        clip.language,
        clip.kind.value,
        clip.title,
        source.suffix.lower()[:16],
        clip.duration,
        clip.sha256,
        clip.valid_from,
        clip.valid_until,
        clip.for_programme,
        clip.airs_at,
    )


def _clip(shared: SharedClip, cache: Path) -> Clip:
    return Clip(
        shared.id,
        shared.language,
        ClipKind(shared.kind),
        shared.title,
        cache / f"{shared.sha256}{shared.suffix}",
        shared.duration,
        shared.sha256,
        shared.valid_from,
        shared.valid_until,
        shared.for_programme,
        shared.airs_at,
    )


def _fetched(engine: Engine, clip: Clip) -> bool:
    """Have the clip's bytes in this node's cache, copying them from the database once."""
    if clip.file.exists():
        return True
    clip.file.parent.mkdir(parents=True, exist_ok=True)
    tmp = clip.file.with_name(f".{clip.file.name}.{id(clip)}.tmp")
    return published.copy_audio(engine, clip.sha256, tmp, clip.file)
