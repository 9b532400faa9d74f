"""Unit tests of MSISDN normalising and carrier routing."""

import pytest

from broadcaster.sms.numbers import (
    InvalidNumber,
    RoutingError,
    build_router,
    normalise_msisdn,
    normalise_prefix,
)


@pytest.mark.parametrize(
    "raw",
    [
        "0961234567",
        "84961234567",
        "+84961234567",
        "+84 96 123 4567",
        "096.123.4567",
        "0084 96-123-4567",
        " 0961234567 ",
        "(+84) 961-234-567",
    ],
)
def test_every_written_form_normalises_to_international(raw):
    assert normalise_msisdn(raw) == "84961234567"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("096123456", "8 digits"),
        ("09612345678", "10 digits"),
        ("+1 202 555 0100", "only \\+84"),
        ("096123456x", "other than digits"),
        ("12345", "expected 0…"),
        ("0061234567", "cannot start with 0"),
    ],
)
def test_bad_numbers_are_refused_with_a_reason(raw, reason):
    with pytest.raises(InvalidNumber, match=reason):
        normalise_msisdn(raw)


@pytest.mark.parametrize(("raw", "want"), [("086", "8486"), ("8486", "8486"), ("+84 86", "8486")])
def test_prefixes_may_be_written_national_or_international(raw, want):
    assert normalise_prefix(raw) == want


@pytest.mark.parametrize("raw", ["86", "abc", "84"])
def test_bad_prefixes_are_refused(raw):
    with pytest.raises(RoutingError):
        normalise_prefix(raw)


def test_routing_uses_the_longest_prefix():
    router = build_router({"viettel": ["086", "8496"], "special": ["849612"]})
    assert router.route("84861234567") == "viettel"
    assert router.route("84969999999") == "viettel"
    assert router.route("84961234567") == "special"
    assert router.route("84881234567") is None


def test_override_wins_for_a_ported_number():
    router = build_router({"viettel": ["086"], "vinaphone": ["088"]}, {"0861234567": "vinaphone"})
    assert router.route("84861234567") == "vinaphone"
    assert router.route("84861234568") == "viettel"


def test_prefix_claimed_by_two_carriers_is_an_error():
    with pytest.raises(RoutingError, match="both carriers"):
        build_router({"viettel": ["086"], "vinaphone": ["8486"]})


def test_override_to_unknown_carrier_is_an_error():
    with pytest.raises(RoutingError, match="unknown carrier 'nope'"):
        build_router({"viettel": ["086"]}, {"0861234567": "nope"})
