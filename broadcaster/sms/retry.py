"""What to do when the SMSC refuses a submit_sm: a rule per command_status.

Pure. Like Jasmin's `submit_error_retrial` table (status name → count and
delay), but with short backoffs: Jasmin waits 30 s before retrying a
throttled submit, which stalls a blast; here throttling slows the bind's
token bucket and retries within a fraction of a second. Statuses the table
does not name fail the message at once (invalid destination and the like:
retrying cannot help and costs the carrier).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from broadcaster.sms.pdu import CommandStatus

GENERIC_NACK = "generic_nack"
MAX_BACKOFF = 60.0


class RetryAction(StrEnum):
    """Throttle slows the whole bind then retries; retry waits then resends; fail stops."""

    THROTTLE = "throttle"
    RETRY = "retry"
    FAIL = "fail"


@dataclass(frozen=True)
class RetryRule:
    """One status's rule: the action, submissions allowed in all, first backoff in seconds."""

    action: RetryAction
    attempts: int = 1
    backoff: float = 0.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(
                f"attempts must be at least 1 (the first submission), not {self.attempts}"
            )
        if not 0 <= self.backoff <= MAX_BACKOFF:
            raise ValueError(f"backoff must be 0..{MAX_BACKOFF:g} seconds, not {self.backoff}")


@dataclass(frozen=True)
class Verdict:
    """What to do with one refused part: retry after `delay` seconds, or fail."""

    retry: bool
    throttle: bool = False
    delay: float = 0.0


FAIL_NOW = Verdict(retry=False)


def _defaults() -> dict[int | str, RetryRule]:
    return {
        CommandStatus.ESME_RTHROTTLED: RetryRule(RetryAction.THROTTLE, attempts=20, backoff=0.05),
        CommandStatus.ESME_RMSGQFUL: RetryRule(RetryAction.THROTTLE, attempts=20, backoff=0.05),
        CommandStatus.ESME_RSYSERR: RetryRule(RetryAction.RETRY, attempts=3, backoff=2.0),
        CommandStatus.ESME_RX_T_APPN: RetryRule(RetryAction.RETRY, attempts=3, backoff=2.0),
        GENERIC_NACK: RetryRule(RetryAction.RETRY, attempts=3, backoff=2.0),
    }


@dataclass(frozen=True)
class RetryPolicy:
    """Rules by command_status (int) and for generic_nack; unnamed statuses fail."""

    rules: dict[int | str, RetryRule] = field(default_factory=_defaults)

    def verdict(self, status: int | str, tries: int) -> Verdict:
        """Decide for a part refused with status after `tries` submissions of it."""
        rule = self.rules.get(status)
        if rule is None or rule.action is RetryAction.FAIL or tries >= rule.attempts:
            return FAIL_NOW
        delay = min(MAX_BACKOFF, rule.backoff * 2 ** (tries - 1))
        return Verdict(retry=True, throttle=rule.action is RetryAction.THROTTLE, delay=delay)

    def with_overrides(self, overrides: dict[int | str, RetryRule]) -> RetryPolicy:
        """Return the defaults with the configured rules laid over them."""
        return RetryPolicy({**self.rules, **overrides})


_HEX = re.compile(r"^0x[0-9a-f]{1,8}$", re.IGNORECASE)


def status_key(text: str) -> int | str:
    """Read a table key: "0x08", a name such as "ESME_RSYSERR", or "generic_nack"."""
    key = text.strip()
    if key.lower() == GENERIC_NACK:
        return GENERIC_NACK
    if _HEX.match(key):
        return int(key, 16)
    try:
        return int(CommandStatus[key.upper()])
    except KeyError:
        raise ValueError(
            f'{text!r} is not a command_status: write it as hex ("0x08"), '
            f'as a SMPP 3.4 name ("ESME_RSYSERR") or "{GENERIC_NACK}"'
        ) from None
