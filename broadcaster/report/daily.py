"""Build and render the daily report from plain values; nothing here reads a store.

One report per district and local day: per commune, the items planned and
aired by programme (relays and recorded bulletins count like any item),
the district van's rounds, the stretches each station was offline, and the
SMS sent per carrier. JSON for scripts, CSV for a spreadsheet, HTML with
Vietnamese headings for the steering committee.
"""

from __future__ import annotations

import csv
import html
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from broadcaster.asrun import Gap
from broadcaster.station.plan import Cue
from broadcaster.station_health import Away

SMS_STATES = ("submitted", "delivered", "failed", "expired")


@dataclass(frozen=True)
class ProgrammeCount:
    programme: str
    planned: int
    aired: int
    missed: int


@dataclass(frozen=True)
class CommuneReport:
    code: str
    name: str
    station: str | None
    programmes: tuple[ProgrammeCount, ...]
    gaps: tuple[Gap, ...]
    away: tuple[Away, ...]


@dataclass(frozen=True)
class VanReport:
    station: str
    planned_rounds: int
    aired_rounds: int


@dataclass(frozen=True)
class CarrierSms:
    carrier: str
    counts: Mapping[str, int]


@dataclass(frozen=True)
class DailyReport:
    district: str
    district_name: str
    day: str
    generated: datetime
    communes: tuple[CommuneReport, ...]
    vans: tuple[VanReport, ...]
    sms: tuple[CarrierSms, ...]


@dataclass(frozen=True)
class CommuneInput:
    """What the shell gathered of one commune."""

    code: str
    name: str
    station: str | None
    cues: Sequence[Cue]
    gaps: Sequence[Gap]
    away: Sequence[Away]


def commune_report(c: CommuneInput, now: datetime) -> CommuneReport:
    """Count a commune's items by programme: planned, aired (ended, not a gap), missed."""
    planned = Counter(_programme(q) for q in c.cues if q.kind != "chime")
    missed = Counter(g.programme or g.kind for g in c.gaps if g.kind != "chime")
    due = Counter(_programme(q) for q in c.cues if q.kind != "chime" and q.at <= now)
    rows = tuple(
        ProgrammeCount(p, planned[p], max(due[p] - missed[p], 0), missed[p])
        for p in sorted(planned)
    )
    return CommuneReport(c.code, c.name, c.station, rows, tuple(c.gaps), tuple(c.away))


def daily_report(
    district: tuple[str, str],
    day: str,
    generated: datetime,
    communes: Iterable[CommuneInput],
    vans: Iterable[VanReport],
    sms: Mapping[str, Mapping[str, int]],
) -> DailyReport:
    return DailyReport(
        district[0],
        district[1],
        day,
        generated,
        tuple(commune_report(c, generated) for c in communes),
        tuple(vans),
        tuple(CarrierSms(k, {s: v.get(s, 0) for s in SMS_STATES}) for k, v in sorted(sms.items())),
    )


def _programme(cue: Cue) -> str:
    return cue.programme or cue.kind


# --- rendering ---------------------------------------------------------------------


def as_json(report: DailyReport, tz: tzinfo) -> dict[str, Any]:
    def t(moment: datetime) -> str:
        return moment.astimezone(tz).isoformat(timespec="seconds")

    return {
        "district": report.district,
        "district_name": report.district_name,
        "date": report.day,
        "generated": t(report.generated),
        "communes": [
            {
                "commune": c.code,
                "name": c.name,
                "station": c.station,
                "programmes": [vars(p) for p in c.programmes],
                "gaps": [
                    {"slot": g.slot, "item": g.item, "programme": g.programme, "at": t(g.at)}
                    for g in c.gaps
                ],
                "offline": [
                    {"since": t(a.since), "until": t(a.until), "seconds": round(a.seconds)}
                    for a in c.away
                ],
            }
            for c in report.communes
        ],
        "vans": [vars(v) for v in report.vans],
        "sms": {s.carrier: dict(s.counts) for s in report.sms},
    }


def as_csv(report: DailyReport, tz: tzinfo) -> str:
    """One table: a row per commune and programme, per offline stretch, per van, per carrier."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        [
            "section",
            "commune",
            "name",
            "station",
            "what",
            "planned",
            "aired",
            "missed",
            "since",
            "until",
            "seconds",
        ]
    )
    for c in report.communes:
        for p in c.programmes:
            w.writerow(
                [
                    "programme",
                    c.code,
                    c.name,
                    c.station,
                    p.programme,
                    p.planned,
                    p.aired,
                    p.missed,
                    "",
                    "",
                    "",
                ]
            )
        for a in c.away:
            w.writerow(
                [
                    "offline",
                    c.code,
                    c.name,
                    c.station,
                    "",
                    "",
                    "",
                    "",
                    a.since.astimezone(tz).isoformat(timespec="seconds"),
                    a.until.astimezone(tz).isoformat(timespec="seconds"),
                    round(a.seconds),
                ]
            )
    for v in report.vans:
        w.writerow(
            [
                "van",
                "",
                "",
                v.station,
                "rounds",
                v.planned_rounds,
                v.aired_rounds,
                v.planned_rounds - v.aired_rounds,
                "",
                "",
                "",
            ]
        )
    for s in report.sms:
        w.writerow(
            [
                "sms",
                "",
                "",
                "",
                s.carrier,
                s.counts["submitted"],
                s.counts["delivered"],
                s.counts["failed"] + s.counts["expired"],
                "",
                "",
                "",
            ]
        )
    return out.getvalue()


def as_html(report: DailyReport, tz: tzinfo) -> str:
    """A page to print or mail; headings in Vietnamese, as the steering committee reads it."""
    e = html.escape
    rows = []
    for c in report.communes:
        for p in c.programmes:
            rows.append(
                f"<tr><td>{e(c.name)}</td><td>{e(c.station or '–')}</td>"
                f"<td>{e(p.programme)}</td><td>{p.planned}</td><td>{p.aired}</td>"
                f"<td{' class=missed' if p.missed else ''}>{p.missed}</td></tr>"
            )
    away = [
        f"<tr><td>{e(c.name)}</td><td>{e(c.station or '–')}</td>"
        f"<td>{a.since.astimezone(tz):%H:%M}</td><td>{a.until.astimezone(tz):%H:%M}</td>"
        f"<td>{_duration(a.seconds)}</td></tr>"
        for c in report.communes
        for a in c.away
    ]
    gaps = [
        f"<tr><td>{e(c.name)}</td><td>{g.at.astimezone(tz):%H:%M:%S}</td><td>{e(g.slot)}</td>"
        f"<td>{e(g.programme or g.kind)}</td><td>{e(g.item)}</td></tr>"
        for c in report.communes
        for g in c.gaps
    ]
    vans = [
        f"<tr><td>{e(v.station)}</td><td>{v.planned_rounds}</td><td>{v.aired_rounds}</td></tr>"
        for v in report.vans
    ]
    sms = [
        f"<tr><td>{e(s.carrier)}</td>"
        + "".join(f"<td>{s.counts[k]}</td>" for k in SMS_STATES)
        + "</tr>"
        for s in report.sms
    ]
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<title>Báo cáo ngày {e(report.day)} – {e(report.district_name)}</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #999;padding:.2em .5em}} .missed{{color:#b00;font-weight:bold}}</style>
</head><body>
<h1>Báo cáo tình hình thực hiện ngày {e(report.day)}</h1>
<p>{e(report.district_name)} · lập lúc {report.generated.astimezone(tz):%H:%M %d/%m/%Y}</p>
<h2>Phát thanh theo xã: kế hoạch và đã phát</h2>
{_table(["Xã", "Đài", "Chương trình", "Kế hoạch", "Đã phát", "Không phát"], rows)}
<h2>Mục không phát</h2>
{_table(["Xã", "Giờ", "Khung giờ", "Chương trình", "Mục"], gaps)}
<h2>Xe loa lưu động</h2>
{_table(["Xe", "Số vòng kế hoạch", "Số vòng đã phát"], vans)}
<h2>Đài mất liên lạc</h2>
{_table(["Xã", "Đài", "Từ", "Đến", "Thời gian"], away)}
<h2>Tin nhắn SMS theo nhà mạng</h2>
{_table(["Nhà mạng", "Đã gửi", "Đã nhận", "Thất bại", "Hết hạn"], sms)}
</body></html>
"""


def _table(headings: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    body = "\n".join(rows) or f'<tr><td colspan="{len(headings)}">Không có</td></tr>'
    return f"<table><tr>{head}</tr>\n{body}\n</table>"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} giờ {minutes % 60} phút" if minutes >= 60 else f"{minutes} phút"
