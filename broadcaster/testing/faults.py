"""A TCP relay in front of the test SMSC that misbehaves the way carriers have.

smpp34's server speaks correct SMPP and exposes no socket, so the faults a
real carrier commits on the wire live here, between it and the ESME: cut
links, a malformed deliver_sm (once, or after every bind, as a carrier
resending an unacknowledged PDU would), a command_length the stream cannot
be framed by, a PDU cut short, a bind_resp of 4 bytes, a generic_nack for a
submit, an unbind mid blast. The relay splits both directions into PDUs
(framing by command_length) so it can inject, replace and swallow whole
PDUs; it counts bind requests for the tests' loop bounds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import structlog

from broadcaster.sms.pdu import HEADER, CommandId, CommandStatus

log = structlog.get_logger(__name__)
INJECTED_SEQ = 0x7FFF0000  # sequence numbers of PDUs the relay makes up (answers swallowed)


@dataclass(frozen=True)
class WireFaults:
    """Faults the relay commits; zero / empty disables each."""

    drop_after: int = 0  # cut every link after this many submits
    malformed_deliver: str = ""  # "once" or "every_bind"
    bad_length: int = 0  # after a bind, a header with this command_length
    bad_length_binds: int = 1  # … after each of the first N binds
    truncate_once: bool = False  # after the first bind, half a deliver_sm, then close
    short_bind_resp: int = 0  # answer the first N binds with a bind_resp of command_length 4
    nack_every: int = 0  # answer every Nth submit_sm with generic_nack
    unbind_after: int = 0  # once, after this many submits, the SMSC unbinds

    @property
    def active(self) -> bool:
        """Tell whether a relay is needed at all."""
        return any(
            (
                self.drop_after,
                self.malformed_deliver,
                self.bad_length,
                self.truncate_once,
                self.short_bind_resp,
                self.nack_every,
                self.unbind_after,
            )
        )


@dataclass
class RelayStats:
    """What the relay did and what the ESME answered to its injections."""

    connections: list[float] = field(default_factory=list)  # time of each connect
    binds: list[float] = field(default_factory=list)  # time of each bind request
    injected: int = 0
    answers: list[tuple[int, int]] = field(default_factory=list)  # (command_id, status)
    nacks: int = 0
    drops: int = 0


def malformed_deliver_sm(sequence: int) -> bytes:
    """Return a deliver_sm whose source_addr runs past the PDU's end (no NUL)."""
    body = b"\0" + bytes((1, 1)) + b"8496" * 3
    return HEADER.pack(16 + len(body), CommandId.DELIVER_SM, 0, sequence) + body


def _split(buffer: bytearray) -> list[bytes]:
    """Take the whole PDUs off the front of buffer (both ends here frame correctly)."""
    out = []
    while len(buffer) >= 16:
        length = int.from_bytes(buffer[:4], "big")
        if len(buffer) < length:
            break
        out.append(bytes(buffer[:length]))
        del buffer[:length]
    return out


class FaultRelay:
    """Listen on the public port and relay to the SMSC on inner_port, committing faults."""

    def __init__(self, faults: WireFaults, inner_port: int):
        self.faults = faults
        self.inner_port = inner_port
        self.stats = RelayStats()
        self._writers: set[asyncio.StreamWriter] = set()
        self._submits = 0
        self._since_drop = 0
        self._bound_links = 0
        self._unbound = False

    def close_all(self) -> None:
        """Abort every relayed connection."""
        for writer in list(self._writers):
            writer.transport.abort()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Relay one ESME connection."""
        self.stats.connections.append(time.monotonic())
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.inner_port)
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(
                self._from_esme(reader, writer, up_writer),
                self._from_smsc(up_reader, writer),
            )
        finally:
            self._writers.difference_update((writer, up_writer))
            writer.transport.abort()
            up_writer.transport.abort()

    async def _from_esme(
        self, reader: asyncio.StreamReader, esme: asyncio.StreamWriter, up: asyncio.StreamWriter
    ) -> None:
        buffer = bytearray()
        try:
            while data := await reader.read(65536):
                buffer += data
                for pdu in _split(buffer):
                    self._esme_pdu(pdu, esme, up)
                await up.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            up.transport.abort()

    def _esme_pdu(self, pdu: bytes, esme: asyncio.StreamWriter, up: asyncio.StreamWriter) -> None:
        _, command_id, status, seq = HEADER.unpack_from(pdu)
        if seq >= INJECTED_SEQ and command_id & 0x80000000:
            self.stats.answers.append((command_id, status))
            return
        if command_id == CommandId.BIND_TRANSCEIVER:
            self.stats.binds.append(time.monotonic())
        if command_id == CommandId.SUBMIT_SM:
            self._submits += 1
            if self.faults.nack_every and self._submits % self.faults.nack_every == 0:
                self.stats.nacks += 1
                esme.write(HEADER.pack(16, CommandId.GENERIC_NACK, CommandStatus.ESME_RSYSERR, seq))
                return
            if self.faults.unbind_after and self._submits == self.faults.unbind_after:
                log.info("smsc.unbinding")
                self._inject(esme, HEADER.pack(16, CommandId.UNBIND, 0, INJECTED_SEQ))
            self._maybe_drop()
        up.write(pdu)

    async def _from_smsc(self, reader: asyncio.StreamReader, esme: asyncio.StreamWriter) -> None:
        buffer = bytearray()
        try:
            while data := await reader.read(65536):
                buffer += data
                for pdu in _split(buffer):
                    if not self._smsc_pdu(pdu, esme):
                        await esme.drain()
                        return
                await esme.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            esme.transport.abort()

    def _smsc_pdu(self, pdu: bytes, esme: asyncio.StreamWriter) -> bool:
        """Forward (or replace) one PDU to the ESME; False when the link is to end."""
        _, command_id, status, seq = HEADER.unpack_from(pdu)
        if command_id != CommandId.BIND_TRANSCEIVER_RESP or status != 0:
            esme.write(pdu)
            return True
        faults = self.faults
        if len(self.stats.binds) <= faults.short_bind_resp:
            esme.write(HEADER.pack(4, CommandId.BIND_TRANSCEIVER_RESP, 0, seq))
            return True
        esme.write(pdu)
        self._bound_links += 1
        first = self._bound_links == 1
        if faults.malformed_deliver == "every_bind" or (
            faults.malformed_deliver == "once" and first
        ):
            self._inject(esme, malformed_deliver_sm(INJECTED_SEQ + self._bound_links))
        if faults.bad_length and self._bound_links <= faults.bad_length_binds:
            self._inject(
                esme, HEADER.pack(faults.bad_length, CommandId.DELIVER_SM, 0, INJECTED_SEQ)
            )
        if faults.truncate_once and first:
            self._inject(esme, malformed_deliver_sm(INJECTED_SEQ)[:20])
            return False
        return True

    def _inject(self, esme: asyncio.StreamWriter, pdu: bytes) -> None:
        self.stats.injected += 1
        esme.write(pdu)

    def _maybe_drop(self) -> None:
        if not self.faults.drop_after:
            return
        self._since_drop += 1
        if self._since_drop < self.faults.drop_after:
            return
        self._since_drop = 0
        self.stats.drops += 1
        log.info("smsc.link_dropped", links=len(self._writers))
        self.close_all()
