"""The `[audio]` section of config.toml: loudness targets, library, publishing."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class AudioSettings(BaseModel):
    """Settings for clips, playlists and the station API; every key has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    library_dir: Path = Field(
        default=Path("audio"), description="clip catalogue; relative to config"
    )
    chime: str = Field(default="chime", description="library id of the clip that opens every slot")
    loudness_lufs: float = Field(
        default=-16.0, ge=-40, le=-5, description="integrated loudness target"
    )
    true_peak_dbtp: float = Field(default=-1.5, ge=-9, le=0, description="true-peak ceiling")
    loudness_range_lu: float = Field(default=11.0, ge=1, le=20)
    bitrate_kbps: int = Field(
        default=64, ge=16, le=320, description="MP3 bitrate of published audio"
    )
    gap_seconds: float = Field(
        default=0.5, ge=0, le=10, description="silence between items of a slot"
    )
    render_slots: bool = Field(
        default=True, description="publish one mixed audio file per slot too"
    )
    mix_max_seconds: float = Field(
        default=1200,
        gt=0,
        description=(
            "slots up to this long are decoded and mixed; longer ones join without decoding"
        ),
    )
    van_round_minutes: float = Field(default=120, gt=0, description="length of a van round's loop")
    days_ahead: int = Field(default=2, ge=1, le=7, description="days published: today and the next")
    token_secret: SecretStr | None = Field(
        default=None, description="derives station tokens; generated in data_dir when unset"
    )
    notice_requires_approval: bool | None = Field(
        default=None,
        description="a notice airs only after a second operator approves; "
        "unset: the same rule as SMS (sms.require_second_operator)",
    )
    clip_requires_approval: bool | None = Field(
        default=None,
        description="a clip imported with a database airs only after a second account "
        "approves it; unset: the same rule as SMS (sms.require_second_operator)",
    )
    max_report_bytes: int = Field(
        default=65536, ge=1024, description="largest playback report body"
    )


def library_dir(audio: AudioSettings, config_path: Path) -> Path:
    """Resolve the library folder against the config file's folder, like every other path."""
    path = audio.library_dir
    return path if path.is_absolute() else config_path.resolve().parent / path
