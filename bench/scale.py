"""Benchmark a national-size blast on PostgreSQL: its expansion, then its drain by 1–3 nodes.

Run by hand: `.venv/bin/python bench/scale.py [--recipients 1000000] [--nodes 1 2 3]
[--url postgresql+psycopg://postgres@127.0.0.1:5432/test]` (default URL:
BROADCASTER_TEST_PG_URL). Goals (issue 12): a 1,000,000-recipient blast
expanded in ≤ 10 s; its messages drained through the test SMSC (20 ms on
every response) faster with each node added.

Everything happens in a schema of its own, dropped at the end. For each node
count a fresh blast to every subscriber is approved (its expansion timed, next
to a bare `CREATE TABLE AS` of the same rows: the floor on this machine, this
run) while the nodes (`broadcaster run` processes, each on its own HTTP port)
stand ready; the drain is timed from the approval's commit until no message is
queued or sending (receipts may still be arriving). Printed for each: msg/s,
the CPU seconds each node process spent per 10,000 messages
(`/proc/<pid>/stat`, which a loaded machine disturbs far less than msg/s),
the same for all of this machine's PostgreSQL processes, the rate of each
minute of the drain, and the same SMSC's rate with a bare smpplib loop (`bench/smpp.py`) as the
ceiling of one bind.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broadcaster.sms import blast as blasts  # noqa: E402
from broadcaster.sms.link import utcnow  # noqa: E402
from broadcaster.store.db import make_engine, upgrade  # noqa: E402
from broadcaster.testing.smsc import free_port  # noqa: E402
from tests.daemon_fixtures import DaemonProcess  # noqa: E402
from tests.sms_fixtures import draft_blast, router_of, settings_for, write_config  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_smpp", ROOT / "bench" / "smpp.py")
assert _spec is not None and _spec.loader is not None
smpp_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(smpp_bench)

DELAY_MS = 20.0
WINDOW = 100
PROGRESS_EVERY = 60.0  # seconds between the drain's progress lines
TICKS = os.sysconf("SC_CLK_TCK")
# The daemon wants a schedule; never accepted, it fires nothing.
NOT_ACCEPTED = (
    '[[programme]]\nid = "idle"\nchannel = "sms"\npriority = "normal"\nareas = ["167"]\n'
    'content = { text = "-" }\n[programme.levels."1"]\ntimes = ["12:00:00"]\n'
)


def cpu_seconds(pid: int) -> float:
    """Return the user and system CPU a process has used (fields 14 and 15 of its stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def server_cpu() -> float:
    """CPU seconds of every PostgreSQL process on this machine (backends, autovacuum,
    WAL writer…): the database's side of a drain, which the nodes' own figures miss."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            line = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        if line.split(" (", 1)[1].startswith("postgres)"):
            total += cpu_seconds(int(stat.parent.name))
    return total


def seed(engine: Engine, recipients: int) -> None:
    """Insert the subscribers server-side: viettel numbers over the three communes."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscribers (msisdn, commune, carrier) "
                "SELECT '8496' || lpad(i::text, 7, '0'), "
                "(ARRAY['05437', '05440', '05443'])[i % 3 + 1], 'viettel' "
                "FROM generate_series(0, :n - 1) AS i"
            ),
            {"n": recipients},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE subscribers"))


def bare_copy(engine: Engine) -> float:
    """Time a CREATE TABLE AS of the rows an expansion inserts: no index, key or trigger."""
    with engine.begin() as conn:
        start = time.perf_counter()
        conn.execute(
            text(
                "CREATE TABLE bare_messages AS SELECT 0 AS blast_id, msisdn, carrier, "
                "0 AS rank, 'queued' AS state, now() AS queued_at, 0 AS attempts "
                "FROM subscribers WHERE commune IN ('05437', '05440', '05443') ORDER BY msisdn"
            )
        )
        elapsed = time.perf_counter() - start
        conn.execute(text("DROP TABLE bare_messages"))
    return elapsed


def remaining(engine: Engine) -> bool:
    """Whether any message is still to send. EXISTS stops at the first entry of the claim
    index: a count(*) polled every 0.2 s over 10^5–10^6 queued rows kept one PostgreSQL
    backend at 93% of a core, a core taken from the nodes being measured."""
    query = text(
        "SELECT EXISTS (SELECT 1 FROM sms_messages WHERE carrier = 'viettel' "
        "AND state IN ('queued', 'sending'))"
    )
    with engine.connect() as conn:
        return bool(conn.execute(query).scalar_one())


def start_nodes(config: Path, count: int) -> list[DaemonProcess]:
    nodes = []
    for n in range(count):
        data = config.parent / f"node{n + 1}"
        data.mkdir(exist_ok=True)
        node = DaemonProcess(config, data / "notify.sock")
        node.env = {
            "BROADCASTER_NODE": f"node{n + 1}",
            "BROADCASTER_HTTP_BIND": f"127.0.0.1:{free_port()}",
            "BROADCASTER_DATA_DIR": str(data),
        }
        nodes.append(node.start(timeout=120))
    return nodes


def expand_blast(config: Path, engine: Engine) -> tuple[float, int]:
    """Draft and approve a blast to every subscriber; return (seconds approving, queued)."""
    settings = settings_for(config)
    router = router_of(settings)
    blast_id = draft_blast(engine, settings, "Thong bao khan.", now=utcnow())
    start = time.perf_counter()
    queued = blasts.approve(engine, router, settings.sms, blast_id, by="b", now=utcnow())
    return time.perf_counter() - start, queued


def waiting(engine: Engine) -> int:
    """Messages queued or sending, from the trigger-kept counters (a few rows, not 10^6)."""
    query = text(
        "SELECT coalesce(sum(n), 0) FROM sms_counters WHERE carrier = 'viettel' "
        "AND state IN ('queued', 'sending')"
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def drain(
    engine: Engine, nodes: list[DaemonProcess], messages: int
) -> tuple[float, list[float], float]:
    """Wait until the nodes have submitted every message; return msg/s, CPU s per 10,000
    of each node and of the database server.

    Prints the rate of each minute on the way: a drain that slows as it goes (dead
    rows, a server without autovacuum) shows here, not only in the average."""
    start = time.perf_counter()
    pids = [node.process.pid for node in nodes if node.process is not None]
    cpu_start = [cpu_seconds(pid) for pid in pids]
    server_start = server_cpu()
    mark, left = start, waiting(engine)
    while remaining(engine):
        time.sleep(0.2)
        if (now := time.perf_counter()) - mark >= PROGRESS_EVERY:
            still = waiting(engine)
            print(
                f"  {now - start:5.0f} s: {messages - still:>9,} sent, "
                f"{(left - still) / (now - mark):,.0f} msg/s this minute",
                flush=True,
            )
            mark, left = now, still
    elapsed = time.perf_counter() - start
    per_node = [
        (cpu_seconds(pid) - before) / messages * 10_000
        for pid, before in zip(pids, cpu_start, strict=True)
    ]
    server = (server_cpu() - server_start) / messages * 10_000
    return messages / elapsed, per_node, server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--url", default=os.environ.get("BROADCASTER_TEST_PG_URL"))
    args = parser.parse_args()
    if not args.url or not args.url.startswith("postgresql"):
        parser.error("a PostgreSQL URL: --url or BROADCASTER_TEST_PG_URL")
    smpp_bench.quiet_logs()
    # A run stopped with kill still stops its nodes and SMSC and drops its schema.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))
    schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        if conn.execute(text("SHOW autovacuum")).scalar_one() != "on":
            # Every message is updated three times or more: without vacuum the outbox's
            # dead rows pile up and the drain slows as it goes (measured: 2,300 → 900 msg/s
            # over one 1,000,000-message drain with autovacuum off).
            print("warning: autovacuum is off on this server: drains slow as they go")
    sep = "&" if "?" in args.url else "?"
    url = f"{args.url}{sep}options=-csearch_path%3D{schema}"
    port = free_port()
    smsc = smpp_bench.start_smsc(port, DELAY_MS, [])
    try:
        ceiling, _ = smpp_bench.bare_loop(port, min(args.recipients, 20_000), WINDOW)
        print(
            f"SMSC ({DELAY_MS:.0f} ms per response, window {WINDOW}): "
            f"bare smpplib {ceiling:,.0f} msg/s on one bind",
            flush=True,
        )
        tmp = Path(tempfile.mkdtemp())
        config = write_config(tmp, url, {"viettel": port}, rate=1e6, window=WINDOW)
        (tmp / "schedules").mkdir()
        (tmp / "schedules" / "none.toml").write_text(NOT_ACCEPTED, encoding="utf-8")
        with config.open("a", encoding="utf-8") as out:
            out.write('\n[planner]\nschedules = "schedules"\n')
        engine = make_engine(url)
        upgrade(engine)
        start = time.perf_counter()
        seed(engine, args.recipients)
        print(f"seeded {args.recipients:,} subscribers in {time.perf_counter() - start:.1f} s")
        for count in args.nodes:
            bare = bare_copy(engine)
            nodes = start_nodes(config, count)  # standing by while the blast expands
            try:
                expansion, queued = expand_blast(config, engine)
                print(
                    f"{count} node(s): expansion of {queued:,} {expansion:.1f} s "
                    f"(bare copy {bare:.1f} s, ratio {expansion / bare:.1f})",
                    flush=True,
                )
                rate, per_node, server = drain(engine, nodes, queued)
            finally:
                for node in nodes:
                    node.terminate(timeout=60)
                    node.kill()
            print(
                f"{count} node(s): drain {rate:,.0f} msg/s; CPU per 10,000 messages per node: "
                f"{', '.join(f'{c:.1f} s' for c in per_node)}; database server {server:.1f} s",
                flush=True,
            )
        engine.dispose()
    finally:
        smsc.terminate()
        smsc.wait()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
