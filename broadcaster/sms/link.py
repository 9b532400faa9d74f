"""The socket to one SMSC: connect, bind, write, read; and how long to wait before rebinding.

The protocol is `pdu.py` and `session.py`; this module only moves bytes. The
bind is ours (a bind_transceiver is five fields; smpplib's client owned a
socket we could not then share): its response is read within the same
bounds as every other PDU, so a `bind_resp` of 4 bytes or a truncated one is
a failed bind, never a successful one.
"""

from __future__ import annotations

import random
import select
import socket
from collections.abc import Callable
from datetime import UTC, datetime

from broadcaster.sms.pdu import (
    HEADER,
    HEADER_SIZE,
    CommandId,
    FramingLost,
    bind_transceiver_pdu,
    command_name,
    frame_length,
    hex_head,
    status_name,
)
from broadcaster.sms.session import BindConfig, LinkLost

READ_SIZE = 262_144


class Link:
    """One bound TCP connection (non-blocking once bound)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    @classmethod
    def open(cls, config: BindConfig, sequence: int, timeout: float = 10.0) -> Link:
        """Connect, set TCP_NODELAY and bind_transceiver; raise LinkLost on any failure."""
        try:
            bind = bind_transceiver_pdu(sequence, config.system_id, config.password)
        except ValueError as exc:  # not ASCII, too long: the SMSC could not read it
            raise LinkLost(f"bind not sent: {exc}") from exc
        try:
            sock = socket.create_connection((config.host, config.port), timeout=timeout)
        except OSError as exc:
            raise LinkLost(f"connect failed: {type(exc).__name__}: {exc}") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(bind)
            _expect_bind_resp(sock)
        except (OSError, LinkLost) as exc:
            sock.close()
            if isinstance(exc, LinkLost):
                raise
            raise LinkLost(f"bind failed: {type(exc).__name__}: {exc}") from exc
        sock.setblocking(False)
        return cls(sock)

    def send(self, data: bytes) -> None:
        """Write all of data, waiting for the socket when its buffer is full."""
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                select.select([], [self.sock], [], 1.0)
                continue
            view = view[sent:]

    def receive(self, timeout: float) -> bytes | None:
        """Return what arrived within timeout (None: nothing); raise LinkLost on close."""
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if not readable:
            return None
        data = self.sock.recv(READ_SIZE)
        if not data:
            raise LinkLost("closed_by_smsc")
        return data

    def close(self, farewell: bytes = b"") -> None:
        """Write a last PDU if there is one (best effort) and close."""
        if farewell:
            try:
                self.sock.setblocking(True)
                self.sock.settimeout(1.0)
                self.sock.sendall(farewell)
            except OSError:
                pass
        self.sock.close()


def _expect_bind_resp(sock: socket.socket) -> None:
    header = _recv_exact(sock, HEADER_SIZE)
    try:
        length = frame_length(header, 0)
    except FramingLost as exc:
        raise LinkLost(f"bind failed: malformed bind response ({exc}; hex {exc.hex})") from exc
    _, command_id, status, _ = HEADER.unpack(header)
    _recv_exact(sock, length - HEADER_SIZE)
    if command_id != CommandId.BIND_TRANSCEIVER_RESP or status != 0:
        raise LinkLost(
            f"bind refused: {command_name(command_id)} {status_name(status)} "
            f"(hex {hex_head(header)})"
        )


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise LinkLost(f"bind failed: closed after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


class Backoff:
    """Exponential reconnect delays with jitter that keep growing while links keep failing.

    A successful bind does not reset it (a carrier that binds and then breaks the
    link at once made the old sender rebind 9,207 times in 30 s); only a link that
    stayed up `healthy_after` seconds or answered a window's worth of submits does.
    Pure: time and randomness come in.
    """

    def __init__(
        self,
        base: float,
        cap: float,
        healthy_after: float,
        progress: int,
        rng: Callable[[], float] = random.random,
    ):
        self.base, self.cap, self.healthy_after, self.progress = base, cap, healthy_after, progress
        self.rng = rng
        self.failures = 0

    def next_delay(self) -> float:
        """Return the wait before the next bind attempt ("equal jitter": half fixed)."""
        delay = min(self.cap, self.base * 2**self.failures)
        self.failures = min(self.failures + 1, 32)
        return delay / 2 + self.rng() * delay / 2

    def link_lost(self, up_for: float, answered: int) -> float:
        """Return the wait after a bound link was lost, having forgotten old failures
        only if that link was healthy."""
        if up_for >= self.healthy_after or answered >= self.progress:
            self.failures = 0
        return self.next_delay()


def utcnow() -> datetime:
    """Return the current aware UTC time (the shell's clock)."""
    return datetime.now(UTC)
