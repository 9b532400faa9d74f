"""The `[sms]` section of config.toml: approval, part cap, quiet hours, timings, retries."""

from __future__ import annotations

import re
from datetime import datetime, time, tzinfo
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from broadcaster.cadence import QuietHours
from broadcaster.sms.retry import RetryAction, RetryPolicy, RetryRule, status_key

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class RetryRuleSettings(BaseModel):
    """One row of `[sms.retry.statuses]`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["throttle", "retry", "fail"]
    attempts: int = Field(
        default=1, ge=1, le=100, description="submissions of a part in all, the first included"
    )
    backoff: float = Field(
        default=0.0, ge=0, le=60, description="seconds before the first retry; doubles each time"
    )


class RetrySettings(BaseModel):
    """`[sms.retry]`: rules per command_status laid over the defaults (see README)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    statuses: dict[str, RetryRuleSettings] = Field(default_factory=dict)

    @field_validator("statuses")
    @classmethod
    def _known_keys(cls, value: dict[str, RetryRuleSettings]) -> dict[str, RetryRuleSettings]:
        for key in value:
            status_key(key)  # raises with what is allowed
        return value

    def policy(self) -> RetryPolicy:
        """Return the defaults with these rules laid over them."""
        return RetryPolicy().with_overrides(
            {
                status_key(k): RetryRule(RetryAction(r.action), r.attempts, r.backoff)
                for k, r in self.statuses.items()
            }
        )


class SmsSettings(BaseModel):
    """How blasts are approved and how senders behave on every bind."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    require_second_operator: bool = Field(
        default=True, description="approval must come from someone other than the drafter"
    )
    max_parts: int = Field(
        default=6, ge=1, le=255, description="longest text allowed, in SMS parts"
    )
    quiet_hours: str | None = Field(
        default="21:00-06:00", description="local HH:MM-HH:MM when no routine SMS is sent"
    )
    validity_hours: float = Field(
        default=24, gt=0, description="a submitted message with no final receipt after this expires"
    )
    lease_seconds: float = Field(
        default=60,
        gt=0,
        description="a claimed message returns to the queue "
        "this long after its sender stops renewing it",
    )
    reconnect_max_seconds: float = Field(
        default=30, gt=0, description="cap of the reconnect backoff"
    )
    reconnect_healthy_seconds: float = Field(
        default=30,
        gt=0,
        description="the reconnect backoff resets only after a link stayed up and "
        "made progress this long",
    )
    enquire_link_seconds: float = Field(default=30, gt=0)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    test_numbers: list[str] = Field(
        default_factory=list, description="the only recipients of exercise blasts"
    )
    overrides: dict[str, str] = Field(
        default_factory=dict, description="ported numbers: msisdn = carrier"
    )
    min_interval: str = Field(
        default="1h",
        pattern=r"^(\d+h)?(\d+m)?(\d+s)?$",
        min_length=2,
        description="a scheduled SMS programme sends at most this often (its cadence floor)",
    )
    currency: str = Field(default="VND", max_length=8, description="unit of price_per_part")

    @field_validator("quiet_hours")
    @classmethod
    def _hhmm_range(cls, value: str | None) -> str | None:
        if value is not None and not _HHMM.match(value):
            raise ValueError(f"quiet_hours {value!r} must look like '21:00-06:00' (local time)")
        return value

    def quiet(self) -> QuietHours:
        """The quiet hours as local times; an empty span when there are none."""
        if self.quiet_hours is None:
            return QuietHours(time(0), time(0))
        match = _HHMM.match(self.quiet_hours)
        assert match is not None
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        return QuietHours(time(h1, m1), time(h2, m2))

    def routine_allowed(self, now: datetime, tz: tzinfo) -> bool:
        """Tell whether routine SMS may go out at `now` (outside quiet hours, local time)."""
        return not self.quiet().contains(now.astimezone(tz).time())
