"""Normalise Vietnamese mobile numbers and route them to a carrier.

Pure. Numbers arrive as `0…`, `84…` or `+84…` (with spaces, dots or dashes);
we keep them as `84` + nine digits. The carrier follows from the longest
matching prefix in a table that is configuration (numbers are ported), with
per-number overrides winning over the table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

COUNTRY_CODE = "84"
NATIONAL_DIGITS = 9
_SEPARATORS = re.compile(r"[\s.\-()]")


class InvalidNumber(ValueError):
    """Raised when a string is not a Vietnamese mobile number."""


class RoutingError(ValueError):
    """Raised when the prefix table itself is inconsistent."""


def normalise_msisdn(raw: str) -> str:
    """Return the international form 84XXXXXXXXX of a Vietnamese mobile number."""
    digits = _SEPARATORS.sub("", raw.strip())
    if not digits:
        raise InvalidNumber("empty number")
    if digits.startswith("+"):
        digits = digits[1:]
        if not digits.startswith(COUNTRY_CODE):
            raise InvalidNumber(f"{raw!r}: only +84 numbers are accepted")
        national = digits[len(COUNTRY_CODE) :]
    elif digits.startswith("00" + COUNTRY_CODE):
        national = digits[2 + len(COUNTRY_CODE) :]
    elif digits.startswith("0"):
        national = digits[1:]
    elif digits.startswith(COUNTRY_CODE) and len(digits) == len(COUNTRY_CODE) + NATIONAL_DIGITS:
        national = digits[len(COUNTRY_CODE) :]
    else:
        raise InvalidNumber(f"{raw!r}: expected 0…, 84… or +84… followed by 9 digits")
    if not national.isdigit():
        raise InvalidNumber(f"{raw!r}: contains characters other than digits")
    if len(national) != NATIONAL_DIGITS:
        raise InvalidNumber(
            f"{raw!r}: has {len(national)} digits after the prefix, expected {NATIONAL_DIGITS}"
        )
    if national[0] == "0":
        raise InvalidNumber(f"{raw!r}: a national number cannot start with 0 after the prefix")
    return COUNTRY_CODE + national


def normalise_prefix(raw: str) -> str:
    """Return a configured prefix ("086", "8486", "+8486") in international form ("8486")."""
    text = _SEPARATORS.sub("", raw.strip())
    if text.startswith("+"):
        text = text[1:]
    if not text.isdigit():
        raise RoutingError(f"prefix {raw!r} must contain only digits")
    if text.startswith("0"):
        return COUNTRY_CODE + text[1:]
    if text.startswith(COUNTRY_CODE) and len(text) > len(COUNTRY_CODE):
        return text
    raise RoutingError(f'prefix {raw!r} must start with 0 or 84 (e.g. "086" or "8486")')


@dataclass(frozen=True)
class CarrierRouter:
    """Route normalised numbers to carriers by longest prefix, overrides first."""

    prefixes: Mapping[str, str]
    overrides: Mapping[str, str] = field(default_factory=dict)

    def route(self, msisdn: str) -> str | None:
        """Return the carrier of a normalised number, or None when no prefix matches."""
        carrier = self.overrides.get(msisdn)
        if carrier is not None:
            return carrier
        for length in range(len(msisdn), 0, -1):
            carrier = self.prefixes.get(msisdn[:length])
            if carrier is not None:
                return carrier
        return None


def build_router(
    carrier_prefixes: Mapping[str, list[str]], overrides: Mapping[str, str] | None = None
) -> CarrierRouter:
    """Build a router from per-carrier prefix lists and per-number overrides.

    A prefix claimed by two carriers is a configuration error, not a silent
    last-one-wins.
    """
    table: dict[str, str] = {}
    for carrier, prefixes in carrier_prefixes.items():
        for raw in prefixes:
            prefix = normalise_prefix(raw)
            owner = table.get(prefix)
            if owner is not None and owner != carrier:
                raise RoutingError(
                    f"prefix {raw!r} is listed for both carriers {owner!r} and {carrier!r}"
                )
            table[prefix] = carrier
    ported: dict[str, str] = {}
    for raw, carrier in (overrides or {}).items():
        if carrier not in carrier_prefixes:
            raise RoutingError(
                f"override for {raw!r} names unknown carrier {carrier!r}; "
                f"known: {', '.join(sorted(carrier_prefixes))}"
            )
        try:
            ported[normalise_msisdn(raw)] = carrier
        except InvalidNumber as exc:
            raise RoutingError(f"override: {exc}") from exc
    return CarrierRouter(prefixes=table, overrides=ported)
