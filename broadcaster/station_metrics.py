"""Prometheus: when each station was last seen, read from the store at scrape time.

A gauge of the Unix time (not an age), so alert rules can compare it with
`time()` and a scrape that fails does not freeze an age.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from broadcaster.station_health import last_seen
from broadcaster.store.stations import last_polls, latest_heartbeats


class StationCollector(Collector):
    """broadcaster_station_last_seen_timestamp_seconds{station}, for stations seen at least once."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        seen = GaugeMetricFamily(
            "broadcaster_station_last_seen_timestamp_seconds",
            "Unix time of a station's last heartbeat or poll",
            labels=["station"],
        )
        beats = latest_heartbeats(self._engine)
        polls = last_polls(self._engine)
        for station in sorted(set(beats) | set(polls)):
            beat = beats.get(station)
            moment = last_seen(beat.at if beat else None, polls.get(station))
            if moment is not None:
                seen.add_metric([station], moment.timestamp())
        yield seen
