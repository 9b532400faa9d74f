"""A clip imported on one node airs from every node: the library shared through the
database (SQLite and PostgreSQL), laid over each node's own folder."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from broadcaster.accounts import Forbidden, Role
from broadcaster.audio.kinds import ClipKind
from broadcaster.audio.library import (
    Clip,
    Library,
    LibraryError,
    file_sha256,
    load_library,
    overlaid,
)
from broadcaster.audio.sharing import node_library
from broadcaster.cli import main
from broadcaster.config import load_settings
from broadcaster.operations import Context, acts
from broadcaster.store import accounts as store
from broadcaster.store.accounts import load_audit
from tests.account_fixtures import People
from tests.conftest import REPO, write_config

# --- the overlay (pure) ------------------------------------------------------------------


def _clip(clip_id: str, sha: str, file: str, language: str = "vi") -> Clip:
    return Clip(clip_id, language, ClipKind.BULLETIN, clip_id.title(), Path(file), 5.0, sha)


def test_a_shared_clip_replaces_the_folders_clip_of_its_id_and_language_only() -> None:
    folder = Library(
        Path("/lib"),
        (_clip("tin", "a" * 64, "tin.vi.ogg"), _clip("tin", "b" * 64, "tin.tyz.ogg", "tyz")),
    )
    shared = (
        _clip("tin", "c" * 64, "/cache/" + "c" * 64 + ".wav"),
        _clip("moi", "d" * 64, "/cache/d.wav"),
    )
    merged = {(c.id, c.language): c for c in overlaid(folder, shared).clips}
    assert merged[("tin", "vi")].sha256 == "c" * 64
    assert merged[("tin", "vi")].file == Path("/cache/" + "c" * 64 + ".wav")
    assert merged[("tin", "tyz")].sha256 == "b" * 64  # the other language stays the folder's
    assert ("moi", "vi") in merged


def test_a_shared_clip_with_the_folders_bytes_uses_the_folders_file_and_the_shared_entry() -> None:
    folder = Library(Path("/lib"), (_clip("tin", "a" * 64, "tin.vi.ogg"),))
    shared = Clip("tin", "vi", ClipKind.NOTICE, "Mới", Path("/cache/x.ogg"), 5.0, "a" * 64)
    (merged,) = overlaid(folder, (shared,)).clips
    assert (merged.file, merged.title, merged.kind) == (Path("tin.vi.ogg"), "Mới", ClipKind.NOTICE)


# --- importing on one node, airing on another ---------------------------------------------


def _node(tmp_path: Path, db_url: str, name: str, library: Path) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    config = write_config(folder, db_url)
    with config.open("a", encoding="utf-8") as out:
        out.write(f'\n[audio]\nlibrary_dir = "{library}"\n')
    return config


def _tone(path: Path, seconds: float, freq: int) -> Path:
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "22050",
            "-c",
            "1",
            str(path),
            "synth",
            str(seconds),
            "sine",
            str(freq),
        ],
        check=True,
    )
    return path


def test_a_clip_imported_on_one_node_is_in_every_nodes_library_as_the_importer(
    tmp_path: Path, db_url: str, engine: Engine, people: People
) -> None:
    empty = tmp_path / "empty-library"
    empty.mkdir()
    samples = tmp_path / "samples"
    shutil.copytree(REPO / "audio", samples)
    importer = load_settings(_node(tmp_path, db_url, "b", empty))
    airing = load_settings(_node(tmp_path, db_url, "a", samples))
    tone = _tone(tmp_path / "tin-moi.wav", 2.5, 440)
    ctx = Context(importer, engine)
    imported = acts.import_clip(
        ctx,
        people.operator,
        tone,
        clip_id="tin-moi",
        title="Tin mới",
        language="vi",
        kind=ClipKind.BULLETIN,
        valid_until=date.today() + timedelta(days=3),
    )
    assert (empty / imported.file).is_file()  # the importing node's folder holds it too

    listed = node_library(airing, engine, fetch=False)  # a reader of entries writes nothing
    assert listed.variant("tin-moi", "vi", date.today()) is not None
    assert not (airing.data_dir / "library").exists()
    library = node_library(airing, engine)
    clip = library.variant("tin-moi", "vi", date.today())
    assert clip is not None and clip.title == "Tin mới"
    assert clip.duration == pytest.approx(2.5, abs=0.05)
    copied = library.path(clip)
    assert copied.parent == airing.data_dir / "library"  # fetched into the airing node's cache
    assert file_sha256(copied) == file_sha256(tone) == clip.sha256
    assert load_library(samples).ids() < library.ids()  # its own clips stay

    (entry,) = [e for e in load_audit(engine) if e.action == "audio.import"]
    assert (entry.account_id, entry.target) == (people.operator.id, "clip:tin-moi/vi")
    assert entry.detail["sha256"] == clip.sha256

    # The same id imported on the other node, which lacks it in its folder, is refused
    # unless it says --replace; a replacement reaches the first node.
    again = Context(airing, engine)
    with pytest.raises(LibraryError, match="already in the library"):
        acts.import_clip(
            again,
            people.operator,
            tone,
            clip_id="tin-moi",
            title="x",
            language="vi",
            kind=ClipKind.BULLETIN,
        )
    longer = _tone(tmp_path / "tin-moi-2.wav", 4.0, 660)
    acts.import_clip(
        again,
        people.operator,
        longer,
        clip_id="tin-moi",
        title="Tin mới (sửa)",
        language="vi",
        kind=ClipKind.BULLETIN,
        replace=True,
    )
    replaced = node_library(importer, engine).variant("tin-moi", "vi", date.today())
    assert replaced is not None and replaced.title == "Tin mới (sửa)"
    assert replaced.sha256 == file_sha256(longer) != clip.sha256
    assert replaced.duration == pytest.approx(4.0, abs=0.05)


def test_an_admin_may_not_import_and_a_recording_needs_the_programmes_areas(
    tmp_path: Path, db_url: str, engine: Engine
) -> None:
    settings = load_settings(_node(tmp_path, db_url, "b", tmp_path / "lib"))
    tone = _tone(tmp_path / "t.wav", 1.0, 440)
    ctx = Context(settings, engine)
    admin, commune = (
        store.add_account(
            engine, name=name, role=role, areas=[area], unix_login=None, now=ctx.now()
        )
        for name, role, area in (("Quản trị", Role.ADMIN, "19"), ("Xã", Role.OPERATOR, "05440"))
    )
    clip = {"clip_id": "t", "title": "T", "language": "vi", "kind": ClipKind.BULLETIN}
    with pytest.raises(Forbidden, match="audio.import"):
        acts.import_clip(ctx, admin, tone, **clip)
    with pytest.raises(Forbidden, match="not on 167"):  # a recording for the district's relay
        acts.import_clip(ctx, commune, tone, areas=["167"], **clip)
    assert not (tmp_path / "lib" / "t.vi.wav").exists()  # a refusal leaves nothing behind


def test_audio_import_without_a_database_keeps_the_clip_in_the_folder_only(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    config = _node(tmp_path, f"sqlite:///{tmp_path / 'never-upgraded.db'}", "files", library)
    tone = _tone(tmp_path / "t.wav", 1.0, 440)
    run = CliRunner().invoke(
        main,
        ["--config", str(config), "audio", "import", str(tone), "--title", "T", "--language", "vi"],
    )
    assert run.exit_code == 0, run.output
    assert "the folder only: no database to share it through" in run.output
    assert (library / "t.vi.wav").is_file()
