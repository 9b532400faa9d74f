"""The clip catalogue: import computes duration and hash; bad catalogues name the fault."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from broadcaster.audio.library import (
    ClipKind,
    LibraryError,
    file_sha256,
    import_clip,
    load_library,
)
from tests.audio_fixtures import REPO


def _tone(path: Path, seconds: float) -> Path:
    subprocess.run(
        ["sox", "-n", "-r", "22050", "-c", "1", str(path), "synth", str(seconds), "sine", "440"],
        check=True,
    )
    return path


def test_import_records_duration_and_hash_and_survives_reload(tmp_path: Path):
    source = _tone(tmp_path / "Tone.wav", 2.5)
    library = load_library(tmp_path / "lib")
    library, clip = import_clip(
        library, source, clip_id=None, title="Thử", language="vi", kind=ClipKind.BULLETIN
    )
    assert clip.id == "tone"
    assert clip.duration == pytest.approx(2.5, abs=0.01)
    assert clip.sha256 == file_sha256(source)
    assert load_library(tmp_path / "lib").clips == (clip,)


def test_second_import_of_same_id_and_language_is_refused_without_replace(tmp_path: Path):
    source = _tone(tmp_path / "a.wav", 1)
    library, _ = import_clip(
        load_library(tmp_path),
        source,
        clip_id="a",
        title="A",
        language="vi",
        kind=ClipKind.BULLETIN,
    )
    with pytest.raises(LibraryError, match="already in the library"):
        import_clip(library, source, clip_id="a", title="A", language="vi", kind=ClipKind.BULLETIN)
    library, _ = import_clip(
        library, source, clip_id="a", title="A", language="tyz", kind=ClipKind.BULLETIN
    )
    assert {c.language for c in library.clips} == {"vi", "tyz"}


def test_file_that_is_not_audio_is_refused(tmp_path: Path):
    junk = tmp_path / "junk.mp3"
    junk.write_text("not audio")
    with pytest.raises(LibraryError, match="junk.mp3: not audio"):
        import_clip(
            load_library(tmp_path / "lib"),
            junk,
            clip_id="j",
            title="J",
            language="vi",
            kind=ClipKind.BULLETIN,
        )


def test_broken_catalogue_names_file_entry_and_key(tmp_path: Path):
    (tmp_path / "library.toml").write_text(
        '[[clip]]\nid = "x"\nlanguage = "vi"\nkind = "song"\ntitle = "X"\nfile = "x.ogg"\n'
        'duration = 1.0\nsha256 = "' + "0" * 64 + '"\n'
        '[[clip]]\nid = "y"\nlanguage = "vi"\nkind = "chime"\ntitle = "Y"\nfile = "../y.ogg"\n'
        'duration = 1.0\nsha256 = "' + "0" * 64 + '"\n'
    )
    with pytest.raises(LibraryError) as err:
        load_library(tmp_path)
    lines = str(err.value).splitlines()
    assert any("clip[0].kind" in line and "library.toml" in line for line in lines)
    assert any("clip[1].file" in line and "plain name" in line for line in lines)


def test_sample_library_has_vietnamese_speech_chime_and_minority_variants():
    library = load_library(REPO / "audio")
    kinds = {c.kind for c in library.clips}
    assert {ClipKind.CHIME, ClipKind.BULLETIN, ClipKind.NOTICE} <= kinds
    languages = {c.language for c in library.clips}
    assert {"vi", "tyz", "ium"} <= languages
    for clip in library.clips:
        assert file_sha256(library.path(clip)) == clip.sha256


def test_audio_import_and_list_commands(cli, sample_config: Path, tmp_path: Path):
    lib = tmp_path / "lib"
    with sample_config.open("a", encoding="utf-8") as fh:
        fh.write(f'\n[audio]\nlibrary_dir = "{lib}"\n')
    source = _tone(tmp_path / "loa.wav", 1.5)
    out = cli(
        "audio",
        "import",
        str(source),
        "--title",
        "Loa thử",
        "--language",
        "vi",
        "--kind",
        "notice",
        "--valid-until",
        "2021-12-31",
    ).output
    assert "loa [vi] notice 1.50s" in out
    listed = cli("audio", "list").output
    assert "Loa thử" in listed and "2021-12-31" in listed
    refused = cli(
        "audio", "import", str(source), "--title", "x", "--language", "vi", "--id", "loa", expect=1
    ).output
    assert "already in the library" in refused
