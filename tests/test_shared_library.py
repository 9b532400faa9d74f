"""A clip imported on one node airs from every node: the library shared through the
database (SQLite and PostgreSQL), laid over each node's own folder."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from broadcaster.accounts import Account, Forbidden, Role
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
from broadcaster.config import Settings, load_settings
from broadcaster.operations import Context, acts
from broadcaster.store import accounts as store
from broadcaster.store.accounts import load_audit
from broadcaster.store.library import Version, VersionRefused, VersionState, versions
from tests.account_fixtures import People
from tests.audio_fixtures import seed_store
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


def _import(ctx: Context, actor: Account, source: Path, title: str, **more: Any) -> Version:
    made = acts.import_clip(
        ctx,
        actor,
        source,
        clip_id="tin-moi",
        title=title,
        language="vi",
        kind=ClipKind.BULLETIN,
        **more,
    )
    return made.version


def _airs(
    settings: Settings, engine: Engine, clip_id: str = "tin-moi", language: str = "vi"
) -> Clip | None:
    return node_library(settings, engine).variant(clip_id, language, date.today())


def test_a_clip_imported_on_one_node_airs_from_every_node_once_a_second_account_approves(
    tmp_path: Path, db_url: str, engine: Engine, people: People, normalised_store: Path
) -> None:
    empty = tmp_path / "empty-library"
    empty.mkdir()
    samples = tmp_path / "samples"
    shutil.copytree(REPO / "audio", samples)
    importer = load_settings(_node(tmp_path, db_url, "b", empty))
    airing = load_settings(_node(tmp_path, db_url, "a", samples))
    seed_store(normalised_store, airing.data_dir)  # its approval republishes the samples
    tone = _tone(tmp_path / "tin-moi.wav", 2.5, 440)
    ctx = Context(importer, engine)
    pending = _import(
        ctx, people.operator, tone, "Tin mới", valid_until=date.today() + timedelta(days=3)
    )
    assert pending.state is VersionState.PENDING
    assert not list(empty.iterdir())  # kept in the database, not in a node's folder
    assert _airs(airing, engine) is None  # one person's word puts nothing on the air
    with pytest.raises(LibraryError, match="#1 awaiting approval; pass --replace"):
        _import(ctx, people.operator, tone, "Tin mới (lần 2)")
    with pytest.raises(Forbidden, match="audio.approve is for: approver"):
        acts.approve_clip(ctx, people.operator, pending.version)

    approved, report = acts.approve_clip(ctx, people.approver, pending.version)
    assert approved.state is VersionState.LIVE and report.stations > 0
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

    trail = [(e.action, e.account_id, e.target) for e in load_audit(engine)]
    target = f"clip-version:{pending.version}"
    assert ("audio.import", people.operator.id, target) in trail
    assert ("audio.approve", people.approver.id, target) in trail

    # The same id imported on the other node is refused unless it says --replace; the
    # replacement waits for its approval while the approved version stays on the air.
    again = Context(airing, engine)
    with pytest.raises(LibraryError, match="already in the library"):
        _import(again, people.operator, tone, "x")
    longer = _tone(tmp_path / "tin-moi-2.wav", 4.0, 660)
    second = _import(again, people.approver, longer, "Tin mới (sửa)", replace=True)
    assert (aired := _airs(importer, engine)) is not None and aired.sha256 == clip.sha256
    with pytest.raises(Forbidden, match="second account"):  # an approver's own import
        acts.approve_clip(again, people.approver, second.version)
    other = store.add_account(
        engine, name="Phó ban", role=Role.APPROVER, areas=["19"], unix_login=None, now=ctx.now()
    )
    acts.approve_clip(again, other, second.version)
    replaced = _airs(importer, engine)
    assert replaced is not None and replaced.title == "Tin mới (sửa)"
    assert replaced.sha256 == file_sha256(longer) != clip.sha256
    assert replaced.duration == pytest.approx(4.0, abs=0.05)
    states = {v.version: v.state for v in versions(engine)}
    assert states == {pending.version: VersionState.SUPERSEDED, second.version: VersionState.LIVE}
    with pytest.raises(VersionRefused, match="is superseded, not pending"):
        acts.approve_clip(again, people.approver, pending.version)


def test_one_account_withdraws_a_live_clip_at_once_and_the_folders_clip_airs_again(
    tmp_path: Path, db_url: str, engine: Engine, people: People, normalised_store: Path
) -> None:
    samples = tmp_path / "samples"
    shutil.copytree(REPO / "audio", samples)
    settings = load_settings(_node(tmp_path, db_url, "a", samples))
    seed_store(normalised_store, settings.data_dir)
    folder = load_library(samples).clips[0]
    tone = _tone(tmp_path / "wrong.wav", 1.5, 440)
    ctx = Context(settings, engine)
    made = acts.import_clip(
        ctx,
        people.operator,
        tone,
        clip_id=folder.id,
        title="Sai",
        language=folder.language,
        kind=folder.kind,
        replace=True,
    )
    acts.approve_clip(ctx, people.approver, made.version.version)
    assert (wrong := _airs(settings, engine, folder.id, folder.language)) is not None
    assert wrong.sha256 == file_sha256(tone)
    withdrawn, report = acts.withdraw_clip(ctx, people.operator, made.version.version)
    assert withdrawn.state is VersionState.WITHDRAWN and report.stations > 0
    assert (back := _airs(settings, engine, folder.id, folder.language)) is not None
    assert back.sha256 == folder.sha256
    (entry,) = [e for e in load_audit(engine) if e.action == "audio.withdraw"]
    assert entry.account_id == people.operator.id
    with pytest.raises(VersionRefused, match="is withdrawn"):
        acts.approve_clip(ctx, people.approver, made.version.version)


def test_a_site_that_waives_the_second_account_airs_an_import_at_once(
    tmp_path: Path, db_url: str, engine: Engine, people: People
) -> None:
    config = _node(tmp_path, db_url, "a", tmp_path / "lib")
    with config.open("a", encoding="utf-8") as out:
        out.write("clip_requires_approval = false\n")
    settings = load_settings(config)
    made = acts.import_clip(
        Context(settings, engine),
        people.operator,
        _tone(tmp_path / "t.wav", 1.0, 440),
        clip_id="tin-moi",
        title="Tin mới",
        language="vi",
        kind=ClipKind.BULLETIN,
    )
    assert made.version.state is VersionState.LIVE and made.report is not None
    assert _airs(settings, engine) is not None


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
    assert not versions(engine)  # a refusal leaves nothing behind


def test_audio_import_without_a_database_keeps_the_clip_in_the_folder_only(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    config = _node(tmp_path, f"sqlite:///{tmp_path / 'never-upgraded.db'}", "files", library)
    tone = _tone(tmp_path / "t.wav", 1.0, 440)
    run = CliRunner().invoke(
        main,
        ["--config", str(config), "audio", "import", str(tone), "--title", "T", "--language", "vi"],
    )
    assert run.exit_code == 0, run.output
    assert "the folder only: no database" in run.output
    assert (library / "t.vi.wav").is_file()
