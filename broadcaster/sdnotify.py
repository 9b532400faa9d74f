"""Tell systemd we are ready and alive (sd_notify), without a dependency.

A no-op when NOTIFY_SOCKET is unset, so the daemon runs the same by hand.
"""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send one sd_notify datagram such as "READY=1" or "WATCHDOG=1"."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half systemd's WatchdogSec), or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000
