"""Run senders: per carrier one socket thread (SmppSession) and one recorder thread.

`run_senders(settings, engine, stop)` is what the daemon starts; `drain=True`
(the `broadcaster sms send` command) stops once nothing is left to send and
every submitted message has its final receipt (or the receipt wait passed).
"""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Engine

from broadcaster.sms.outbox import Outbox, Outcomes
from broadcaster.sms.receipts import Receipt
from broadcaster.sms.settings import SmsSettings
from broadcaster.sms.smpp import (
    BindConfig,
    Link,
    LinkLost,
    SmppSession,
    enquire_link_pdu,
    open_link,
    utcnow,
)

log = structlog.get_logger(__name__)


class CarrierSender:
    """One bind: the socket thread and the recorder thread, started and stopped together."""

    def __init__(
        self,
        bind: BindConfig,
        engine: Engine,
        sms: SmsSettings,
        tz: object,
        stop: threading.Event,
        *,
        drain: bool = False,
        receipt_wait: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.bind = bind
        self.sms = sms
        self.tz = tz
        self.stop = stop
        self.drain = drain
        self.receipt_wait = receipt_wait
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{bind.carrier}:{uuid.uuid4().hex[:8]}"
        self.outbox = Outbox(engine, bind.carrier, self.owner)
        self.lease = timedelta(seconds=sms.lease_seconds)
        self.session = SmppSession(bind, self._post, time.monotonic)
        self._outcomes: queue.SimpleQueue[tuple[Outcomes, int] | None] = queue.SimpleQueue()
        self._claim_wanted = threading.Event()
        self._socket_idle = threading.Event()
        self._socket_done = threading.Event()
        self._threads = [
            threading.Thread(target=self._socket_loop, name=f"smpp-{bind.carrier}", daemon=True),
            threading.Thread(target=self._recorder_loop, name=f"rec-{bind.carrier}", daemon=True),
        ]

    def start(self) -> None:
        """Start both threads."""
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for both threads to finish."""
        for thread in self._threads:
            thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Tell whether either thread still runs."""
        return any(t.is_alive() for t in self._threads)

    def _post(self, outcomes: Outcomes, parts: int) -> None:
        self._outcomes.put((outcomes, parts))

    # -- socket thread ----------------------------------------------------------------
    def _socket_loop(self) -> None:
        session, cfg = self.session, self.bind
        backoff = cfg.reconnect_base
        try:
            while not self.stop.is_set():
                if session.link is None:
                    if not self._connect():
                        self.stop.wait(backoff)
                        backoff = min(backoff * 2, cfg.reconnect_max)
                        continue
                    backoff = cfg.reconnect_base
                try:
                    self._turn()
                except (LinkLost, OSError) as exc:
                    self._lose_link(exc)
                except Exception as exc:  # a bug must cost a reconnect, not the sender
                    log.exception("sms.sender_error", carrier=cfg.carrier)
                    self._lose_link(exc)
            self._finish()
        finally:
            self._socket_done.set()
            self._outcomes.put(None)

    def _connect(self) -> bool:
        session, cfg = self.session, self.bind
        try:
            sock = open_link(cfg, session._next_seq())
        except (OSError, LinkLost) as exc:
            log.warning("sms.bind_failed", carrier=cfg.carrier, host=cfg.host, port=cfg.port,
                        error=str(exc))
            return False
        session.link = Link(sock, last_rx=time.monotonic())
        log.info("sms.bind_ok", carrier=cfg.carrier, host=cfg.host, port=cfg.port,
                 system_id=cfg.system_id)
        return True

    def _lose_link(self, exc: BaseException) -> None:
        session = self.session
        link = session.link
        session.link = None
        if link is not None:
            if isinstance(exc, LinkLost) and exc.farewell:
                try:
                    link.sock.setblocking(True)
                    link.sock.sendall(exc.farewell)
                except OSError:
                    pass
            link.sock.close()
        log.warning("sms.link_lost", carrier=self.bind.carrier,
                    reason=getattr(exc, "reason", str(exc)), inflight=len(session.inflight))
        session.requeue_inflight()
        session.flush_outcomes()

    def _turn(self) -> None:
        """Do one round: apply the inbox, send what is allowed, wait, read."""
        session, cfg = self.session, self.bind
        link = session.link
        assert link is not None
        session.drain_inbox()
        now = time.monotonic()
        if session.held < 2 * cfg.window and not self.stop.is_set():
            self._claim_wanted.set()
        wire = session.fill(now)
        if link.enquire_sent is None and now - link.last_rx > cfg.enquire_link:
            wire.append(enquire_link_pdu(session._next_seq()))
            link.enquire_sent = now
        if wire:
            self._send(b"".join(wire))
        self._check_timeouts(now)
        if session.idle:
            self._socket_idle.set()
        else:
            self._socket_idle.clear()
        timeout = 0.05
        if session.ready and session.capacity() > 0:
            timeout = min(timeout, session.bucket.wait(now))
        if session.retry:
            timeout = min(timeout, max(0.0, session.retry[0][0] - now))
        readable, _, _ = select.select([link.sock, session._wake_r], [], [], timeout)
        if link.sock in readable:
            data = link.sock.recv(262144)
            if not data:
                raise LinkLost("closed_by_smsc")
            replies = session.on_bytes(data, time.monotonic())
            if replies:
                self._send(b"".join(replies))
        session.flush_outcomes()

    def _send(self, data: bytes) -> None:
        link = self.session.link
        assert link is not None
        view = memoryview(data)
        while view:
            try:
                sent = link.sock.send(view)
            except BlockingIOError:
                select.select([], [link.sock], [], 1.0)
                continue
            view = view[sent:]

    def _check_timeouts(self, now: float) -> None:
        link = self.session.link
        assert link is not None
        limit = self.bind.response_timeout
        if link.enquire_sent is not None and now - link.enquire_sent > limit:
            raise LinkLost("enquire_link_timeout")
        if self.session.inflight:
            oldest = min(sent for _, _, sent in self.session.inflight.values())
            if now - oldest > limit:
                raise LinkLost("response_timeout")

    def _finish(self) -> None:
        """Stop claiming, let in-flight parts answer briefly, release the rest, unbind."""
        session = self.session
        deadline = time.monotonic() + 5.0
        while session.link is not None and session.inflight and time.monotonic() < deadline:
            try:
                session.ready.clear()
                self._turn()
            except (LinkLost, OSError) as exc:
                self._lose_link(exc)
        session.requeue_inflight()
        session.release_all()
        session.flush_outcomes()
        if session.link is not None:
            with contextlib.suppress(OSError):
                self._send(bytes.fromhex("00000010000000060000000000000000"))
            session.link.sock.close()
            session.link = None
        log.info("sms.sender_stopped", carrier=self.bind.carrier)

    # -- recorder thread --------------------------------------------------------------
    def _recorder_loop(self) -> None:
        last_renew = last_expire = 0.0
        last_progress = time.monotonic()
        held_blasts: set[int] = set()
        unmatched: list[tuple[float, Receipt]] = []
        seen_at: dict[str, float] = {}
        socket_finished = False
        while True:
            batch, parts, socket_finished = self._collect(socket_finished)
            now = self.clock()
            mono = time.monotonic()
            if unmatched and (batch or socket_finished or mono - unmatched[0][0] > 1):
                batch.receipts += [r for _, r in unmatched]
                unmatched.clear()
            if batch:
                first_seen = mono
                for receipt in self.outbox.record(batch, now):
                    if receipt.smsc_id in seen_at and mono - seen_at[receipt.smsc_id] > 60:
                        log.warning("sms.receipt_unknown", carrier=self.bind.carrier,
                                    smsc_id=receipt.smsc_id, stat=receipt.stat)
                        seen_at.pop(receipt.smsc_id)
                        continue
                    seen_at.setdefault(receipt.smsc_id, first_seen)
                    unmatched.append((seen_at[receipt.smsc_id], receipt))
                self.session.deliver("durable", parts)
                last_progress = time.monotonic()
                log.debug("sms.batch_recorded", carrier=self.bind.carrier,
                          submitted=len(batch.submitted), failed=len(batch.failed),
                          receipts=len(batch.receipts))
            if socket_finished:
                for _, receipt in unmatched:
                    log.warning("sms.receipt_unknown", carrier=self.bind.carrier,
                                smsc_id=receipt.smsc_id, stat=receipt.stat)
                return
            if self._claim_wanted.is_set() and not self.stop.is_set():
                claimed = self.outbox.claim(now, 2 * self.bind.window, self.lease,
                                            self.sms.routine_allowed(now, self.tz))
                if claimed:
                    new = {c.blast_id for c in claimed} - held_blasts
                    for blast_id, (body, unaccented, _) in self.outbox.blasts(new).items():
                        self.session.add_blast(blast_id, body, unaccented)
                    held_blasts |= new
                    self.session.deliver("claimed", claimed)
                    last_progress = mono
                self._claim_wanted.clear()
                if not claimed and self.drain and self._socket_idle.is_set():
                    self._check_drained(now, mono - last_progress)
            if mono - last_renew > self.sms.lease_seconds / 3:
                self.outbox.renew(now, self.lease)
                cancelled = {b for b, (_, _, c) in self.outbox.blasts(held_blasts).items() if c}
                if cancelled:
                    self.session.deliver("cancelled", cancelled)
                last_renew = mono
            if mono - last_expire > 10:
                self.outbox.expire_overdue(now, timedelta(hours=self.sms.validity_hours))
                last_expire = mono

    def _collect(self, finished: bool) -> tuple[Outcomes, int, bool]:
        """Merge everything posted so far, waiting briefly for the first item."""
        merged, parts = Outcomes(), 0
        timeout: float | None = 0.02
        while True:
            try:
                item = self._outcomes.get(timeout=timeout) if timeout else \
                    self._outcomes.get_nowait()
            except queue.Empty:
                return merged, parts, finished
            timeout = None
            if item is None:
                finished = True
                continue
            outcomes, n = item
            parts += n
            merged.parts += outcomes.parts
            merged.submitted += outcomes.submitted
            merged.failed += outcomes.failed
            merged.released += outcomes.released
            merged.receipts += outcomes.receipts

    def _check_drained(self, now: datetime, quiet_for: float) -> None:
        to_send, awaiting = self.outbox.backlog(self.sms.routine_allowed(now, self.tz))
        if to_send == 0 and (awaiting == 0 or quiet_for > self.receipt_wait):
            log.info("sms.drained", carrier=self.bind.carrier, awaiting_receipts=awaiting)
            self.stop.set()


def bind_configs(settings: object) -> list[BindConfig]:
    """Return one BindConfig per configured carrier."""
    sms: SmsSettings = settings.sms  # type: ignore[attr-defined]
    return [
        BindConfig(
            carrier=name, host=c.host, port=c.port, system_id=c.system_id,
            password=c.password.get_secret_value(), source_addr=c.source_addr,
            rate=c.rate, window=c.window, enquire_link=sms.enquire_link_seconds,
            reconnect_max=sms.reconnect_max_seconds,
        )
        for name, c in settings.carriers.items()  # type: ignore[attr-defined]
    ]


def run_senders(
    settings: object,
    engine: Engine,
    stop: threading.Event,
    *,
    drain: bool = False,
    receipt_wait: float = 30.0,
    carriers: list[str] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Run one sender per carrier until stop is set (or, draining, until all are done)."""
    senders = []
    for bind in bind_configs(settings):
        if carriers and bind.carrier not in carriers:
            continue
        own_stop = threading.Event() if drain else stop
        sender = CarrierSender(
            bind, engine, settings.sms, settings.tz, own_stop,  # type: ignore[attr-defined]
            drain=drain, receipt_wait=receipt_wait, clock=clock,
        )
        senders.append(sender)
        sender.start()
    try:
        while any(s.alive for s in senders):
            if stop.wait(0.2):
                break
    finally:
        for s in senders:
            s.stop.set()
            s.join()
