"""Benchmark the planner: 10,000 communes × 5 programmes × 2 days, then a replan.

Run by hand: `.venv/bin/python bench/plan.py`. Prints figures; asserts nothing.
The replan is what the daemon does after `broadcaster level set`: load the
changes (here in memory), plan the whole horizon again and bucket by instant.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from broadcaster.areas import Area, AreaKind, AreaRegistry, Station
from broadcaster.audio.kinds import ClipKind
from broadcaster.audio.library import Clip, Library
from broadcaster.cadence import QuietHours, parse_time
from broadcaster.clashes import Layout, find_drops
from broadcaster.levels import Ladder, Level, LevelChange
from broadcaster.occurrence import Relay
from broadcaster.planner import group_by_time, plan
from broadcaster.schedule_files import parse_schedule

DISTRICTS, COMMUNES_EACH = 100, 100
RELAYS = {name: Relay(name, f"http://stream.example/{name}", "a") for name in ("district", "vov1")}
LADDER = Ladder("bench", "", tuple(Level(n) for n in ("1", "2", "3", "4", "5.1", "5.2", "5.3")))
SCHEDULE = """
[[programme]]
id = "bulletin"
channel = "relay"
areas = ["P/communes"]
content = { relay = "district" }
[programme.levels."5.1"]
times = ["06:00", "11:00", "17:00"]

[[programme]]
id = "health"
channel = "loudspeaker"
areas = ["P/communes"]
content = { clips = ["a", "b"] }
[programme.levels."1"]
times = ["17:30"]
[programme.levels."5.2"]
per_day = 3
window = ["06:30", "18:30"]

[[programme]]
id = "vov"
channel = "relay"
areas = ["P/communes"]
content = { relay = "vov1" }
[programme.levels."1"]
times = ["05:30", "18:00"]

[[programme]]
id = "reminder"
channel = "sms"
areas = ["P/communes"]
content = { text = "Rua tay" }
[programme.levels."5.1"]
times = ["09:00"]
[programme.levels."5.3"]
times = ["09:00", "16:00"]

[[programme]]
id = "map"
channel = "task"
areas = ["P/communes"]
content = { command = ["true"] }
[programme.levels."5.1"]
every = "12h"
[programme.levels."5.3"]
every = "6h"
"""


def registry() -> AreaRegistry:
    areas = {"P": Area("P", "Province", AreaKind.PROVINCE, None, "bench", level="5.1")}
    for d in range(DISTRICTS):
        code = f"D{d:03d}"
        areas[code] = Area(code, code, AreaKind.DISTRICT, "P", "bench")
        for c in range(COMMUNES_EACH):
            commune = f"{code}C{c:03d}"
            areas[commune] = Area(
                commune,
                commune,
                AreaKind.COMMUNE,
                code,
                "bench",
                station=Station(f"s-{commune}", commune),
            )
    return AreaRegistry(areas)


def timed(runs: int, func):  # type: ignore[no-untyped-def]
    results, seconds = None, []
    for _ in range(runs):
        began = time.perf_counter()
        results = func()
        seconds.append(time.perf_counter() - began)
    return results, min(seconds), statistics.median(seconds)


def main() -> None:
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    reg = registry()
    quiet = QuietHours(parse_time("21:00"), parse_time("06:00"))
    programmes = parse_schedule(Path("bench.toml"), SCHEDULE, reg, {"bench": LADDER}, quiet, RELAYS)
    communes = len(reg.communes_under("P"))
    start = datetime(2021, 9, 10, 17, tzinfo=UTC)
    end = start + timedelta(days=2)
    changes = [LevelChange("P", "5.1", start - timedelta(days=3), "bench", "start")]

    occurrences, best, median = timed(5, lambda: plan(programmes, changes, reg, start, end, tz))
    print(f"communes={communes} programmes={len(programmes)} days=2")
    print(f"plan:    {len(occurrences):,} occurrences in {best:.3f} s (median {median:.3f} s)")

    # A level change mid-horizon in 30 districts, another on the province: replan all.
    changed = changes + [
        LevelChange(f"D{d:03d}", "5.3", start + timedelta(hours=5), "b", "r") for d in range(30)
    ]
    changed.append(LevelChange("P", "5.2", start + timedelta(hours=20), "bench", "r"))

    def replan():  # type: ignore[no-untyped-def]
        return group_by_time(plan(programmes, changed, reg, start, end, tz))

    buckets, best, median = timed(5, replan)
    total = sum(len(b) for b in buckets.values())
    print(
        f"replan:  {total:,} occurrences in {len(buckets)} instants (jobs) in {best:.3f} s "
        f"(median {median:.3f} s), after level changes in 30 districts and the province"
    )

    # What `schedule check` adds per level: every station's slots laid out, 7 days.
    clips = tuple(
        Clip(i, "vi", ClipKind.BULLETIN, i, Path(i), 5.0, "0" * 64) for i in ("a", "b", "chime")
    )
    layout = Layout(Library(Path("."), clips), "chime", 0.5, 7200)
    week = plan(programmes, changes, reg, start, start + timedelta(days=7), tz)
    drops, best, median = timed(3, lambda: find_drops(week, reg, layout, tz))
    print(
        f"layout:  {len(week):,} occurrences of 7 days at {communes:,} stations laid out in "
        f"{best:.3f} s (median {median:.3f} s), {len(drops)} items not aired"
    )


if __name__ == "__main__":
    main()
