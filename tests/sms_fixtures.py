"""Helpers for SMS tests (the db_url/engine fixtures come from conftest.py): a small
config pointing carriers at test SMSCs, bulk subscriber seeding, reassembly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from broadcaster.config import Settings, load_settings
from broadcaster.sms import blast as blasts
from broadcaster.sms.encoding import decode_payload, read_segment
from broadcaster.sms.numbers import CarrierRouter, build_router
from broadcaster.sms.states import Priority
from broadcaster.testing.smsc import Submit

THANH_HOA = (
    "Tăng cường sử dụng các dịch vụ công trực tuyến trên Cổng dịch vụ công tỉnh "
    "Thanh Hóa (dichvucong.thanhhoa.gov.vn), giảm di chuyển, tiếp xúc đông người; "
    "phòng tránh nguy cơ lây, nhiễm virus Corona"
)
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội: outside quiet hours


def write_config(
    tmp_path: Path,
    db_url: str,
    ports: dict[str, int],
    *,
    rate: float = 5000,
    window: int = 100,
    sms: str = "",
) -> Path:
    """Write a minimal config: one district, three communes, carriers on the given ports."""
    prefixes = {"viettel": ["096", "086"], "vinaphone": ["088", "091"], "mobifone": ["090"]}
    carriers = "".join(
        f'\n[carriers.{name}]\nhost = "127.0.0.1"\nport = {port}\nsystem_id = "{name[:8]}"\n'
        f'password = "test"\nsource_addr = "DINHHOA"\nrate = {rate}\nwindow = {window}\n'
        f"prefixes = {prefixes[name]!r}\n".replace("'", '"')
        for name, port in ports.items()
    )
    path = tmp_path / "config.toml"
    path.write_text(
        f'timezone = "Asia/Ho_Chi_Minh"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[storage]\nurl = "{db_url}"\n'
        '[ladders.l]\nlevels = ["1", "2"]\n'
        '[[areas.provinces]]\ncode = "19"\nname = "P"\nladder = "l"\n'
        '[[areas.districts]]\ncode = "167"\nname = "D"\nprovince = "19"\n'
        + "".join(
            f'[[areas.communes]]\ncode = "{c}"\nname = "C{c}"\ndistrict = "167"\n'
            for c in ("05437", "05440", "05443")
        )
        + f"[sms]\n{sms}\n"
        + carriers,
        encoding="utf-8",
    )
    return path


def settings_for(path: Path) -> Settings:
    return load_settings(path)


def router_of(settings: Settings) -> CarrierRouter:
    return build_router(
        {n: c.prefixes for n, c in settings.carriers.items()}, settings.sms.overrides
    )


def draft_blast(
    engine: Engine,
    settings: Settings,
    body: str,
    *,
    by: str = "an",
    priority: Priority = Priority.URGENT,
    now: datetime = NOW,
) -> int:
    """Draft a blast to the whole district (tests and benches approve it themselves)."""
    return blasts.draft(
        engine,
        settings.registry(),
        router_of(settings),
        settings.sms,
        areas=["167"],
        body=body,
        unaccented=False,
        priority=priority,
        by=by,
        exercise=False,
        now=now,
    ).id


def start_blast(
    engine: Engine,
    settings: Settings,
    body: str,
    by: str = "an",
    priority: Priority = Priority.URGENT,
    now: datetime = NOW,
) -> int:
    """Draft a district blast and have a second operator approve it: queued to send."""
    blast_id = draft_blast(engine, settings, body, by=by, priority=priority, now=now)
    blasts.approve(engine, router_of(settings), settings.sms, blast_id, by="binh", now=now)
    return blast_id


def seed_subscribers(
    engine: Engine,
    count: int,
    prefix: str = "096",
    communes: tuple[str, ...] = ("05437", "05440", "05443"),
    carrier: str = "viettel",
) -> list[str]:
    """Insert count subscribers directly (fast), spread over the communes."""
    digits = 9 - (len(prefix) - 1)
    rows = [
        {
            "msisdn": f"84{prefix[1:]}{i:0{digits}d}",
            "commune": communes[i % len(communes)],
            "carrier": carrier,
        }
        for i in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscribers (msisdn, commune, carrier) "
                "VALUES (:msisdn, :commune, :carrier)"
            ),
            rows,
        )
    return [r["msisdn"] for r in rows]


def reassemble(submits: list[Submit]) -> dict[str, list[str]]:
    """Group accepted parts by (destination, ref) and decode each complete message."""
    groups: dict[tuple[str, int | None], dict[int, str]] = {}
    totals: dict[tuple[str, int | None], int] = {}
    singles: dict[str, list[str]] = {}
    for s in submits:
        seg = read_segment(s.esm_class, s.short_message)
        body = decode_payload(seg.payload, s.data_coding)
        if seg.ref is None:
            singles.setdefault(s.destination_addr, []).append(body)
            continue
        key = (s.destination_addr, seg.ref)
        groups.setdefault(key, {})[seg.seq] = body
        totals[key] = seg.total
    out = singles
    for key, parts in groups.items():
        assert sorted(parts) == list(range(1, totals[key] + 1)), f"incomplete {key}"
        out.setdefault(key[0], []).append("".join(parts[i] for i in sorted(parts)))
    return out


def counts(engine: Engine, blast_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT state, count(*) FROM sms_messages WHERE blast_id = :b GROUP BY state"),
            {"b": blast_id},
        ).all()
    return {state: n for state, n in rows}
