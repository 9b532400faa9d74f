"""Request and response bodies of `/api/v1`: every input bounded, every output typed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

AreaCode = Annotated[str, StringConstraints(min_length=1, max_length=32)]
MAX_ID = 2_147_483_647  # INTEGER on PostgreSQL; larger ids cannot exist
MAX_AUDIO_BASE64 = 14_000_000  # about 10 MB of audio


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(BaseModel):
    """Every error: a sentence for people, and for 422 the fields at fault."""

    error: str
    detail: list[dict[str, Any]] | None = None


class AccountOut(BaseModel):
    id: int
    name: str
    role: Literal["operator", "approver", "admin"]
    areas: list[str]
    unix_login: str | None
    disabled: bool
    has_totp: bool


class AreaOut(BaseModel):
    code: str
    name: str
    kind: Literal["province", "district", "commune"]
    parent: str | None
    ladder: str
    level: str
    since: datetime | None
    by: str | None
    reason: str | None
    inherited_from: str | None


class LevelIn(_In):
    level: str = Field(min_length=1, max_length=32, examples=["5.2"])
    reason: str = Field(min_length=1, max_length=1000, examples=["Chỉ thị 16"])


class LevelChangeOut(BaseModel):
    area: str
    level: str
    previous: str | None
    at: datetime
    by: str
    reason: str


class OccurrenceOut(BaseModel):
    programme: str
    channel: str
    area: str
    at: datetime
    priority: str
    level: str
    duration_seconds: int | None
    content: dict[str, Any]


class TextIn(_In):
    text: str = Field(min_length=1, max_length=2000, examples=["Đeo khẩu trang nơi công cộng"])
    unaccented: bool = False


class TextPreviewOut(BaseModel):
    encoding: Literal["gsm7", "ucs2"]
    parts: int
    characters: int
    ucs2_characters: list[str] = Field(
        description="characters that force UCS-2 (fewer characters a part); unaccenting "
        "or replacing them may allow GSM 7-bit"
    )


class BlastIn(TextIn):
    areas: list[AreaCode] = Field(min_length=1, max_length=100, examples=[["167"]])
    priority: Literal["routine", "urgent"] = "routine"
    exercise: bool = False


class BlastPreviewOut(BaseModel):
    id: int
    exercise: bool
    recipients: int
    encoding: str
    parts: int
    total_sms: int
    per_carrier: dict[str, int]
    cost: float
    currency: str
    ucs2_characters: list[str]
    corrects: int | None = None


class BlastApprovedOut(BaseModel):
    id: int
    queued: int


class BlastCancelledOut(BaseModel):
    id: int
    cancelled: int


class BlastStatusOut(BaseModel):
    id: int
    state: str
    exercise: bool
    priority: str
    total: int
    counts: dict[str, int]
    per_carrier: dict[str, dict[str, int]]
    corrects: int | None = Field(None, description="the blast this one corrects")


class NoticeIn(_In):
    areas: list[AreaCode] = Field(min_length=1, max_length=100, examples=[["05440"]])
    text: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        examples=["Thông báo khẩn: mưa lũ, không qua ngầm tràn."],
        description="spoken with espeak-ng (Vietnamese voice)",
    )
    audio_base64: str | None = Field(
        None, min_length=4, max_length=MAX_AUDIO_BASE64, description="a recorded notice, base64"
    )
    audio_suffix: Literal[".mp3", ".ogg", ".wav", ".m4a", ".opus", ".flac"] = ".mp3"


class NoticeOut(BaseModel):
    id: int
    areas: list[str]
    text: str | None
    state: str
    duration: float
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None


class NoticeIssuedOut(BaseModel):
    notice: NoticeOut
    on_air_stations: int | None
    sms_blasts: list[int]
    sms_queued: bool


class StationOut(BaseModel):
    station: str
    area: str
    name: str
    slot: str | None
    start: datetime | None
    on_air: bool
    state: str = Field(description="online, late or offline ([stations] late_after, offline_after)")
    last_seen: datetime | None = Field(description="last heartbeat or poll")
    cache_until: str | None = Field(description="last day the station's cache holds")
    last_aired: str | None
    last_aired_at: datetime | None
    player: str | None
    version: str | None


class AsRunOut(BaseModel):
    station: str
    slot: str | None
    item: str
    started: datetime
    finished: datetime | None
    received: datetime


class AuditOut(BaseModel):
    id: int
    account_id: int | None
    account: str | None
    action: str
    target: str
    detail: dict[str, Any]
    at: datetime


class ScheduleReviewOut(BaseModel):
    sha256: str
    files: list[str]
    added: list[str]
    changed: list[str]
    removed: list[str]
    sms_a_day: list[dict[str, Any]]


class ScheduleApproveIn(_In):
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="the sha256 of the review being accepted"
    )
