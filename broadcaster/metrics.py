"""Prometheus figures: counts by state from counter tables, the scheduler's heartbeat,
build info, process figures and this process's carrier binds.

Queue depths, sends, deliveries and fires are states of rows that several
processes change (senders, the scheduler, CLI commands), so in-process
counters would each see a part. The database keeps per-state counts itself
(triggers, see store/counters.py), so a scrape reads a few dozen rows
whatever the size of the message table, and every daemon gives the same,
whole answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Info, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, select

from broadcaster.binds import BINDS, BindStates
from broadcaster.store import dispatch as dispatch_store
from broadcaster.store.counters import DispatchCounterRow, SmsCounterRow


class StoreCollector(Collector):
    """SMS messages by carrier and state, occurrences by channel and state, and when
    the scheduling daemon last wrote its heartbeat."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

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
            sms = select(SmsCounterRow.carrier, SmsCounterRow.state, SmsCounterRow.n)
            for carrier, state, count in conn.execute(sms.where(SmsCounterRow.n != 0)):
                messages.add_metric([carrier, state], count)
            claims = select(
                DispatchCounterRow.channel, DispatchCounterRow.state, DispatchCounterRow.n
            )
            for channel, state, count in conn.execute(claims.where(DispatchCounterRow.n != 0)):
                fired.add_metric([channel, state], count)
        yield messages
        yield fired
        status = dispatch_store.read_status(self._engine)
        if status is not None and status.heartbeat_at is not None:
            beat = GaugeMetricFamily(
                "broadcaster_scheduler_heartbeat_timestamp_seconds",
                "Unix time of the scheduling daemon's last heartbeat (alert on time() - this)",
            )
            beat.add_metric([], status.heartbeat_at.timestamp())
            yield beat


class BindCollector(Collector):
    """1 per carrier whose bind this process holds, 0 for one it runs a sender for
    but has lost; nothing for carriers it does not send to."""

    def __init__(self, binds: BindStates) -> None:
        self._binds = binds

    def collect(self) -> Iterator[GaugeMetricFamily]:
        bound = GaugeMetricFamily(
            "broadcaster_carrier_bound",
            "Whether this process's bind to the carrier is up",
            labels=["carrier"],
        )
        for carrier, up in sorted(self._binds.snapshot().items()):
            bound.add_metric([carrier], 1.0 if up else 0.0)
        yield bound


def register_service_metrics(
    registry: CollectorRegistry, engine: Engine | None, binds: BindStates = BINDS
) -> None:
    """Put the database figures, build info, process figures and binds on `registry`."""
    if engine is not None:
        registry.register(StoreCollector(engine))
    Info("broadcaster_build", "The running broadcaster", registry=registry).info(
        {"version": _version()}
    )
    ProcessCollector(registry=registry)
    registry.register(BindCollector(binds))


def _version() -> str:
    try:
        return version("broadcaster")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
