"""A level change's preview: the next day planned both ways, SMS counted and priced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from broadcaster.impact import level_impact
from broadcaster.occurrence import Channel
from tests.planner_fixtures import programmes_from, sample_programmes, set_at, settings

CONFIG = settings()
REGISTRY = CONFIG.registry()
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
START = datetime(2021, 9, 10, tzinfo=HCM).astimezone(UTC)
SMS = programmes_from(
    """
    [[programme]]
    id = "daily-sms"
    channel = "sms"
    areas = ["167"]
    content = { text = "Đeo khẩu trang khi ra ngoài" }
    [programme.levels."5.3"]
    times = ["10:00", "16:00"]
    """,
    CONFIG,
)


def _impact(area: str, level: str, **kwargs):  # type: ignore[no-untyped-def]
    return level_impact(
        [*sample_programmes(CONFIG), *SMS],
        [set_at("167", "5.1")],
        REGISTRY,
        area=area,
        level=level,
        start=START,
        end=START + timedelta(days=1),
        tz=HCM,
        **kwargs,
    )


def test_raising_the_district_adds_van_rounds_and_the_sms_of_the_new_level():
    impact = _impact(
        "167",
        "5.3",
        recipients={"05437": 100, "05440": 50},
        part_price={"05437": 100 * 800.0, "05440": 50 * 350.0},
    )
    van = next(c for c in impact.channels if c.channel is Channel.VAN)
    assert (van.before, van.after) == (1, 3)
    sms = next(c for c in impact.channels if c.channel is Channel.SMS)
    assert (sms.before, sms.after) == (0, 2)
    assert impact.sms_before == 0 and impact.sms_after == 2 * 150  # one part each, 150 people
    assert impact.cost_after == 2 * (100 * 800 + 50 * 350)


def test_a_commune_change_counts_only_that_commune():
    impact = _impact("05440", "5.3", recipients={"05437": 100, "05440": 50})
    assert impact.sms_after == 0  # the SMS programme targets the district, which stays at 5.1
    bulletins = {c.channel: c for c in impact.channels}
    assert bulletins[Channel.RELAY].before == bulletins[Channel.RELAY].after == 3
    unchanged = _impact("05440", "5.1", recipients={"05440": 50})
    assert all(c.delta == 0 for c in unchanged.channels) and unchanged.sms_delta == 0
