"""Run a local SMSC for tests, benchmarks and the README: smpp34's server plus faults.

The SMPP side is the `smpp34` package's server (Rust-backed, not ours): it
accepts any bind and answers enquire_link. On top we add what a real carrier
does to us: throttling every Nth submit, a full queue, hard errors, slow
responses, delivery receipts (TLV and/or `id:… stat:…` text, hex or decimal
ids, held for the next bind when the link is down). Faults on the wire (cut
links, malformed PDUs, a short bind_resp, generic_nack, unbind) need a socket
smpp34 does not expose: when any is asked for, the relay of `faults.py` owns
the public port in front of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import smpp34
import structlog

from broadcaster.sms.pdu import TLV_MESSAGE_STATE, TLV_RECEIPTED_MESSAGE_ID
from broadcaster.testing.faults import FaultRelay, RelayStats, WireFaults

log = structlog.get_logger(__name__)

ESME_RTHROTTLED = 0x58
ESME_RMSGQFUL = 0x14


@dataclass(frozen=True)
class SmscPolicy:
    """Faults and receipts the test SMSC applies; zero disables each rule."""

    throttle_every: int = 0
    queue_full_every: int = 0
    reject_every: int = 0
    reject_status: int = 0x0B
    delay: float = 0.0
    receipts: bool = True
    receipt_tlv: bool = True
    receipt_id_decimal: bool = False
    undeliverable_every: int = 0
    wire: WireFaults = field(default_factory=WireFaults)


@dataclass(frozen=True)
class Submit:
    """One submit_sm the SMSC accepted, as it arrived."""

    system_id: str
    destination_addr: str
    source_addr: str
    esm_class: int
    data_coding: int
    short_message: bytes
    message_id: str
    at: float = 0.0  # wall-clock time the SMSC accepted it


@dataclass
class SmscStats:
    """What the SMSC saw, for tests to count and reassemble."""

    accepted: list[Submit] = field(default_factory=list)
    rejected: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    binds: int = 0
    receipts_sent: int = 0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestSmsc:
    """An SMSC on 127.0.0.1:port run inside an asyncio loop."""

    __test__ = False  # not a pytest class

    def __init__(self, port: int, policy: SmscPolicy | None = None, *, record: bool = True):
        self.port = port
        self.policy = policy or SmscPolicy()
        self.record = record
        self.stats = SmscStats()
        self.changed = threading.Condition()
        self._count = 0
        self._next_id = 0x10000
        self._sessions: dict[str, smpp34.Esme] = {}
        self._accounts: dict[str, str] = {}  # session id → system_id, kept past its unbind
        self._held: dict[str, list[tuple[Submit, str]]] = defaultdict(list)
        self.relay: FaultRelay | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until stop is set."""
        wire = self.policy.wire
        inner_port = free_port() if wire.active else self.port
        server = smpp34.Server(host="127.0.0.1", port=inner_port, system_id="TESTSMSC")
        await server.start()
        listener = None
        if wire.active:
            self.relay = FaultRelay(wire, inner_port)
            listener = await asyncio.start_server(self.relay.handle, "127.0.0.1", self.port)
        log.info("smsc.listening", port=self.port, policy=str(self.policy))
        pump = asyncio.ensure_future(self._pump(server))
        await stop.wait()
        pump.cancel()
        if listener is not None and self.relay is not None:
            listener.close()
            self.relay.close_all()
        await server.stop()

    @property
    def wire_stats(self) -> RelayStats:
        """Return what the fault relay did (empty when there is none)."""
        return self.relay.stats if self.relay is not None else RelayStats()

    async def _pump(self, server: smpp34.Server) -> None:
        loop = asyncio.get_running_loop()
        while True:
            event = await server.next()
            if isinstance(event, smpp34.Esme):
                self._on_bind(event)
            elif isinstance(event, smpp34.SubmitSmEvent):
                self._count += 1
                if self.policy.delay:
                    loop.call_later(self.policy.delay, self._answer, event, self._count)
                else:
                    self._answer(event, self._count)
            elif isinstance(event, smpp34.Unbound):
                self._sessions.pop(event.session_id, None)

    def _on_bind(self, esme: smpp34.Esme) -> None:
        self._sessions[esme.session_id] = esme
        self._accounts[esme.session_id] = esme.system_id
        self.stats.binds += 1
        held = self._held.pop(esme.system_id, [])
        for submit, stat in held:
            self._spawn(self._send_receipt(submit, stat))
        self._notify()

    def _answer(self, event: smpp34.SubmitSmEvent, n: int) -> None:
        """Answer the nth submit_sm; a timer callback, not a task per submit (delays
        are how benchmarks load us, and a task each cost more than the answer)."""
        policy = self.policy
        status = _fault_status(policy, n)
        if status:
            event.reject(status)
            self.stats.rejected[status] += 1
        else:
            self._next_id += 1
            message_id = f"{self._next_id:x}"
            event.accept(message_id=message_id)
            # the account, even when its bind died before the answer (a delay, a kill):
            # the receipt is still owed to the account, on any of its binds
            submit = Submit(
                system_id=self._accounts.get(event.session_id, ""),
                destination_addr=event.destination_addr,
                source_addr=event.source_addr,
                esm_class=event.esm_class,
                data_coding=event.data_coding,
                short_message=event.short_message,
                message_id=message_id,
                at=time.time(),
            )
            if self.record:
                self.stats.accepted.append(submit)
            if policy.receipts and event.registered_delivery & 0x01:
                undeliverable = policy.undeliverable_every and n % policy.undeliverable_every == 0
                self._spawn(self._send_receipt(submit, "UNDELIV" if undeliverable else "DELIVRD"))
        self._notify()

    def _spawn(self, receipt: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(receipt)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_receipt(self, submit: Submit, stat: str) -> None:
        """Deliver a receipt on a receiving bind of its account; if that bind has died,
        on another one, as a carrier does when several nodes bind one account; held
        for the next bind when none is left."""
        shown_id = (
            str(int(submit.message_id, 16)) if self.policy.receipt_id_decimal else submit.message_id
        )
        err = "000" if stat == "DELIVRD" else "001"
        text = (
            f"id:{shown_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
            f"submit date:2101010000 done date:2101010000 stat:{stat} err:{err} text:"
        )
        tlvs = []
        if self.policy.receipt_tlv:
            tlvs = [
                smpp34.Tlv(TLV_RECEIPTED_MESSAGE_ID, submit.message_id.encode() + b"\0"),
                smpp34.Tlv(TLV_MESSAGE_STATE, bytes([2 if stat == "DELIVRD" else 5])),
            ]
        failed: set[str] = set()
        while (esme := self._receiver(submit.system_id, failed)) is not None:
            try:
                await esme.deliver_sm(
                    submit.source_addr,
                    text.encode(),
                    source_addr=submit.destination_addr,
                    esm_class=0x04,
                    tlvs=tlvs,
                )
            except smpp34.SmppError:
                failed.add(esme.session_id)
                continue
            self.stats.receipts_sent += 1
            self._notify()
            return
        self._held[submit.system_id].append((submit, stat))

    def _receiver(self, system_id: str, failed: set[str]) -> smpp34.Esme | None:
        return next(
            (
                s
                for s in self._sessions.values()
                if s.system_id == system_id and s.can_receive and s.session_id not in failed
            ),
            None,
        )

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, predicate: Callable[[SmscStats], bool], timeout: float) -> bool:
        """Block until predicate(stats) holds or timeout passes; return whether it held."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self.stats), timeout)


def _fault_status(policy: SmscPolicy, n: int) -> int:
    if policy.throttle_every and n % policy.throttle_every == 0:
        return ESME_RTHROTTLED
    if policy.queue_full_every and n % policy.queue_full_every == 0:
        return ESME_RMSGQFUL
    if policy.reject_every and n % policy.reject_every == 0:
        return policy.reject_status
    return 0


class SmscThread:
    """Run TestSmsc instances in a background thread with their own event loop."""

    def __init__(self, smscs: list[TestSmsc]):
        self.smscs = smscs
        self._thread = threading.Thread(target=self._run, name="test-smsc", daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tasks = [asyncio.ensure_future(s.serve(self._stop)) for s in self.smscs]
        await asyncio.sleep(0)
        await _wait_listening([s.port for s in self.smscs])
        self._ready.set()
        await asyncio.gather(*tasks)

    def __enter__(self) -> SmscThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test SMSC did not start listening within 10 s")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            # The loop may close between the check and the call (its servers ended on
            # their own): then there is nothing left to stop.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


async def _wait_listening(ports: list[int]) -> None:
    for port in ports:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.close()
            break


def run_forever(smscs: list[TestSmsc]) -> None:
    """Serve in the foreground until interrupted (the `broadcaster smsc` command)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await asyncio.gather(*(s.serve(stop) for s in smscs))

    asyncio.run(main())
