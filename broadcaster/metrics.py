"""Prometheus figures read from the database when /metrics is scraped.

Queue depths, sends, deliveries and fires are states of rows that several
processes change (senders, the scheduler, CLI commands), so in-process
counters would each see a part. Counting the rows at scrape time gives every
daemon the same, whole answer; the GROUP BYs run on indexed columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from broadcaster.store import dispatch as dispatch_store
from broadcaster.store.dispatch import DispatchRow
from broadcaster.store.sms import MessageRow


class StoreCollector(Collector):
    """SMS messages by carrier and state, dispatched occurrences by channel and state,
    and the age of the scheduler's heartbeat."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        messages = GaugeMetricFamily(
            "broadcaster_sms_messages",
            "SMS messages by carrier and state (queued is the queue depth)",
            labels=["carrier", "state"],
        )
        fired = GaugeMetricFamily(
            "broadcaster_dispatch_occurrences",
            "Occurrences the scheduler claimed, by channel and state",
            labels=["channel", "state"],
        )
        with self._engine.connect() as conn:
            sms = select(MessageRow.carrier, MessageRow.state, func.count()).group_by(
                MessageRow.carrier, MessageRow.state
            )
            for carrier, state, count in conn.execute(sms):
                messages.add_metric([carrier or "", state], count)
            claims = select(DispatchRow.channel, DispatchRow.state, func.count()).group_by(
                DispatchRow.channel, DispatchRow.state
            )
            for channel, state, count in conn.execute(claims):
                fired.add_metric([channel, state], count)
        yield messages
        yield fired
        status = dispatch_store.read_status(self._engine)
        if status is not None and status.heartbeat_at is not None:
            age = GaugeMetricFamily(
                "broadcaster_scheduler_heartbeat_age_seconds",
                "Seconds since the scheduling daemon last wrote its heartbeat",
            )
            age.add_metric([], (self._clock() - status.heartbeat_at).total_seconds())
            yield age
