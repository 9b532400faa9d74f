"""Benchmark our SMPP sender against a bare windowed smpplib loop, same SMSC, same run.

Run by hand: `.venv/bin/python bench/smpp.py [--count 20000] [--window 100] [--repeat 3]`.
The SMSC (smpp34's server with receipts, `broadcaster smsc`) runs as its own
process. Our sender records every state durably in SQLite; the bare loop
records nothing. Printed: msg/s of each, and the ratio, with and without a
20 ms delay on every response; and the CPU this process spent per message
(µs, `time.process_time`) for each, which a loaded machine disturbs far less
than msg/s.
"""

from __future__ import annotations

import argparse
import logging
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import structlog
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broadcaster.sms import blast as blasts  # noqa: E402
from broadcaster.sms.link import utcnow  # noqa: E402
from broadcaster.sms.sender import run_senders  # noqa: E402
from broadcaster.store.db import make_engine, upgrade  # noqa: E402
from broadcaster.testing.smsc import free_port  # noqa: E402
from tests.sms_fixtures import (  # noqa: E402
    draft_blast,
    router_of,
    seed_subscribers,
    settings_for,
    write_config,
)


def start_smsc(port: int, delay_ms: float, receipts: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "broadcaster",
            "smsc",
            "--port",
            str(port),
            "--delay-ms",
            str(delay_ms),
            *receipts,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(3000):  # a loaded machine can take seconds to import and listen
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.01)
    proc.kill()
    proc.wait()
    raise RuntimeError("SMSC did not start within 30 s")


def bare_loop(port: int, count: int, window: int, receipts_on: bool = True) -> tuple[float, float]:
    """Send count submit_sm with smpplib, window outstanding, answering receipts."""
    client = smpplib.client.Client("127.0.0.1", port, allow_unknown_opt_params=True)
    client.connect()
    client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.bind_transceiver(system_id="bare", password="x")
    outstanding = sent = done = 0
    start, cpu = time.perf_counter(), time.process_time()
    while done < count:
        while outstanding < window and sent < count:
            client.send_message(
                source_addr="DINHHOA",
                destination_addr=f"8496{sent:07d}",
                short_message=b"Thong bao khan.",
                registered_delivery=1,
                source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
            )
            outstanding += 1
            sent += 1
        pdu = client.read_pdu()
        if pdu.command == "submit_sm_resp":
            outstanding -= 1
            done += 1
        elif pdu.command == "deliver_sm":
            client.send_pdu(
                smpplib.smpp.make_pdu("deliver_sm_resp", client=client, sequence=pdu.sequence)
            )
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    receipts = 0
    client._socket.settimeout(2.0)
    try:  # untimed: collect outstanding receipts so the next run finds the SMSC idle
        while receipts_on and receipts < count:
            pdu = client.read_pdu()
            if pdu.command == "deliver_sm":
                receipts += 1
                client.send_pdu(
                    smpplib.smpp.make_pdu("deliver_sm_resp", client=client, sequence=pdu.sequence)
                )
    except (OSError, smpplib.exceptions.ConnectionError):
        pass
    client.disconnect()
    return count / elapsed, cpu / count * 1e6


def our_sender(port: int, count: int, window: int, receipts_on: bool = True) -> tuple[float, float]:
    """Send a count-recipient blast through run_senders; time until all are submitted."""
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'bench.db'}"
    settings = settings_for(write_config(tmp, url, {"viettel": port}, rate=1e6, window=window))
    engine = make_engine(url)
    upgrade(engine)
    seed_subscribers(engine, count)
    router = router_of(settings)
    blast_id = draft_blast(engine, settings, "Thong bao khan.", now=utcnow())
    blasts.approve(engine, router, settings.sms, blast_id, by="b", now=utcnow())
    stop = threading.Event()
    runner = threading.Thread(target=run_senders, args=(settings, engine, stop), daemon=True)
    start, cpu = time.perf_counter(), time.process_time()
    runner.start()
    # By carrier, so the count reads the claim index: a full scan every 20 ms took CPU
    # from the sender being measured.
    query = text(
        "SELECT count(*) FROM sms_messages "
        "WHERE carrier = 'viettel' AND state IN ('queued', 'sending')"
    )
    while True:
        with engine.connect() as conn:
            if conn.execute(query).scalar_one() == 0:
                break
        time.sleep(0.02)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    waiting = text(
        "SELECT count(*) FROM sms_messages WHERE carrier = 'viettel' AND state = 'submitted'"
    )
    deadline = time.monotonic() + 30  # untimed: let receipts finish so the SMSC ends idle
    while receipts_on and time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(waiting).scalar_one() == 0:
                break
        time.sleep(0.1)
    stop.set()
    runner.join()
    return count / elapsed, cpu / count * 1e6


# (response delay in ms, extra SMSC flags): receipts double the SMSC's work, so the
# 20 ms goal (>= 4,000 msg/s with window 100) is measured with them off as well.
BENCH_CASES: tuple[tuple[float, list[str]], ...] = (
    (0.0, []),
    (20.0, []),
    (20.0, ["--no-receipts"]),
)


def quiet_logs() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def main() -> None:
    quiet_logs()
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per case (order alternates); medians are printed",
    )
    args = parser.parse_args()
    for delay, receipts in BENCH_CASES:
        bares, ours, bare_cpu, our_cpu = [], [], [], []
        for run in range(args.repeat):
            port = free_port()
            smsc = start_smsc(port, delay, receipts)
            try:
                runs = [
                    (bare_loop, bares, bare_cpu),
                    (our_sender, ours, our_cpu),
                ]
                for loop, rates, cpus in runs[::-1] if run % 2 else runs:
                    rate, cpu = loop(port, args.count, args.window, not receipts)
                    rates.append(rate)
                    cpus.append(cpu)
            finally:
                smsc.terminate()
                smsc.wait()
        ratios = [o / b for o, b in zip(ours, bares, strict=True)]
        label = "off" if receipts else "on "
        print(
            f"receipts {label} delay {delay:>4.0f} ms  window {args.window}  "
            f"count {args.count}: bare smpplib {median(bares):,.0f} msg/s  "
            f"ours (durable, SQLite) {median(ours):,.0f} msg/s  ratio {median(ratios):.2f}  "
            f"(ours {', '.join(f'{o:,.0f}' for o in ours)}; "
            f"ratios {', '.join(f'{r:.2f}' for r in ratios)}); "
            f"CPU per message: bare {median(bare_cpu):.0f} µs, ours {median(our_cpu):.0f} µs",
            flush=True,
        )


if __name__ == "__main__":
    main()
