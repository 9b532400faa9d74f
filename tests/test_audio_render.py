"""Loudness normalisation and slot mixing with the real ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from broadcaster.audio.library import file_sha256, load_library, probe_duration
from broadcaster.audio.render import (
    AudioStore,
    LoudnessTarget,
    RenderError,
    measure_loudness,
    normalise,
    render_sequence,
)
from tests.audio_fixtures import REPO

TARGET = LoudnessTarget()


def test_every_sample_clip_measures_within_one_lu_of_target(normalised_store: Path):
    library = load_library(REPO / "audio")
    store = AudioStore(normalised_store)
    for clip in library.clips:
        rendered = normalise(library.path(clip), clip.sha256, TARGET, store)
        level = measure_loudness(store.path(rendered.sha256))
        assert abs(level.lufs - TARGET.lufs) <= 1.0, (clip.id, clip.language, level)
        assert level.true_peak <= TARGET.true_peak + 0.5, (clip.id, level)


def test_quiet_clip_is_raised_to_target_and_edge_silence_trimmed(tmp_path: Path):
    padded = tmp_path / "padded.wav"
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "44100",
            "-c",
            "1",
            str(padded),
            "synth",
            "3",
            "sine",
            "330",
            "vol",
            "0.05",
            "pad",
            "1",
            "2",
        ],
        check=True,
    )
    store = AudioStore(tmp_path / "store")
    rendered = normalise(padded, file_sha256(padded), TARGET, store)
    assert probe_duration(padded) == pytest.approx(6.0, abs=0.01)
    assert rendered.duration == pytest.approx(3.0, abs=0.2)
    assert abs(measure_loudness(store.path(rendered.sha256)).lufs - TARGET.lufs) <= 1.0


def test_normalised_clip_is_cached_by_hash_and_never_rewritten(tmp_path: Path):
    library = load_library(REPO / "audio")
    clip = next(c for c in library.clips if c.id == "gian-cach")
    store = AudioStore(tmp_path / "store")
    first = normalise(library.path(clip), clip.sha256, TARGET, store)
    stamp = store.path(first.sha256).stat().st_mtime_ns
    again = normalise(library.path(clip), clip.sha256, TARGET, store)
    assert again == first
    assert store.path(first.sha256).stat().st_mtime_ns == stamp
    assert file_sha256(store.path(first.sha256)) == first.sha256


def test_clip_changed_since_import_is_refused(tmp_path: Path):
    source = tmp_path / "c.wav"
    subprocess.run(
        ["sox", "-n", "-r", "22050", "-c", "1", str(source), "synth", "1", "sine", "440"],
        check=True,
    )
    with pytest.raises(RenderError, match="content changed since import"):
        normalise(source, "0" * 64, TARGET, AudioStore(tmp_path / "store"))


def test_short_and_long_sequences_last_as_long_as_their_parts(normalised_store: Path):
    library = load_library(REPO / "audio")
    store = AudioStore(normalised_store)
    parts = [normalise(library.path(c), c.sha256, TARGET, store) for c in library.clips]
    expected = sum(p.duration for p in parts) + 0.5 * (len(parts) - 1)
    mixed = render_sequence(parts, 0.5, TARGET, store, mix_max_seconds=600)
    streamed = render_sequence(parts * 2, 0.5, TARGET, store, mix_max_seconds=10)
    # Joined MP3 frames keep (or lose) each item's encoder padding: at most 50 ms an item.
    assert mixed.duration == pytest.approx(expected, abs=0.05 * len(parts))
    assert streamed.duration == pytest.approx(2 * expected + 0.5, abs=0.05 * 2 * len(parts))
    assert abs(measure_loudness(store.path(mixed.sha256)).lufs - TARGET.lufs) <= 1.0
