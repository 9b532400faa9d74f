"""`broadcaster plan` and `broadcaster schedule check|approve`: what will air, is it sane,
and has a second account accepted what it sends to the public."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from broadcaster.accounts import Account
from broadcaster.cli.actor import acting
from broadcaster.cli.context import App, format_option, pass_app
from broadcaster.levels import LevelChange

if TYPE_CHECKING:
    from broadcaster.clashes import Drop, Layout
    from broadcaster.occurrence import Occurrence
    from broadcaster.programmes import Programme


def layout_or_fail(app: App) -> Layout:
    """How the publisher lays out slots, or a clear error for a broken audio library."""
    from broadcaster.audio.library import LibraryError
    from broadcaster.dropped import slot_layout

    try:
        return slot_layout(app.settings, app.engine_if_ready())
    except LibraryError as exc:
        raise click.ClickException(f"invalid audio library:\n{exc}") from None


def programmes_or_fail(app: App) -> tuple[Programme, ...]:
    """Load the schedules or stop with one line per problem."""
    from broadcaster.schedule_approval import load_checked
    from broadcaster.schedule_files import ScheduleError

    try:
        return load_checked(app.settings)
    except ScheduleError as exc:
        raise click.ClickException("invalid schedules:\n" + str(exc)) from None


@click.command("plan")
@click.option(
    "--from",
    "day",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="First local day (default: today in the configured zone).",
)
@click.option("--days", type=click.IntRange(1, 31), default=1, show_default=True)
@click.option("--area", default=None, help="Only what reaches this area (above or below it).")
@click.option(
    "--svg",
    "svg_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the timeline picture (SVG) the console shows to this file.",
)
@format_option
@pass_app
def plan_cmd(
    app: App, day: datetime | None, days: int, area: str | None, fmt: str, svg_path: Path | None
) -> None:
    """Show the occurrences planned from the schedules and the levels in force."""
    from broadcaster.clashes import find_drops
    from broadcaster.dropped import drops_by_occurrence
    from broadcaster.planner import plan
    from broadcaster.store.levels import load_changes

    tz = app.settings.tz
    first = day.date() if day else app.now().astimezone(tz).date()
    start, end = local_span(first, days, app)
    programmes = programmes_or_fail(app)
    occurrences = plan(programmes, load_changes(app.engine), app.registry, start, end, tz)
    drops = drops_by_occurrence(
        find_drops(occurrences, app.registry, layout_or_fail(app), tz), app.registry
    )
    if area is not None:
        related = {
            area,
            *(a.code for a in app.registry.ancestors(area)),
            *(a.code for a in app.registry.descendants(area)),
        }
        occurrences = [o for o in occurrences if o.area in related]
    if svg_path is not None:
        write_svg(app, svg_path, occurrences, start, end, area, set(drops))
        return
    if fmt == "json":
        app.echo_json(
            [occurrence_row(app, o) | _not_aired(drops.get(o.key, [])) for o in occurrences]
        )
        return
    if not occurrences:
        click.echo("nothing planned")
    for o in occurrences:
        length = f"{int(o.duration.total_seconds() // 60)}m" if o.duration else "-"
        mark = _mark(drops.get(o.key, []))
        click.echo(
            f"{app.local(o.at)}  {o.programme:<24} {o.channel.value:<11} "
            f"{o.area:<6} {app.registry.get(o.area).name:<28} {o.priority.value:<9} "
            f"level {o.level:<4} {length}{mark}"
        )


def _mark(drops: list[Drop]) -> str:
    if not drops:
        return ""
    count = len({station for d in drops for station in d.stations})
    return f"  NOT AIRED at {count} station{'s' if count != 1 else ''}: {drops[0].reason}"


def _not_aired(drops: list[Drop]) -> dict[str, Any]:
    if not drops:
        return {"airs": True}
    return {
        "airs": False,
        "not_aired": [
            {"item": d.item, "reason": d.reason, "stations": sorted(d.stations)} for d in drops
        ],
    }


def write_svg(
    app: App,
    path: Path,
    occurrences: list[Occurrence],
    start: datetime,
    end: datetime,
    area: str | None,
    dropped: set[tuple[str, str, datetime]],
) -> None:
    """Write the plan as the console's timeline picture, dropped and missed in red."""
    from broadcaster.store.dispatch import DispatchState, keys_in
    from broadcaster.timeline import timeline_svg

    tz = app.settings.tz
    where = app.registry.get(area).name if area else ""
    first, last = start.astimezone(tz).date(), (end - timedelta(seconds=1)).astimezone(tz).date()
    span = f"{first:%d/%m/%Y}" + (f" – {last:%d/%m/%Y}" if last != first else "")
    missed = keys_in(app.engine, start, end, [DispatchState.MISSED])
    svg = timeline_svg(
        occurrences,
        app.registry,
        start,
        end,
        tz,
        now=app.now(),
        missed=missed,
        dropped=dropped,
        title=" · ".join(filter(None, [where, span])),
    )
    path.write_text(svg, encoding="utf-8")
    click.echo(f"wrote {path} ({len(occurrences)} occurrences)")


def local_span(first: date, days: int, app: App) -> tuple[datetime, datetime]:
    """Local midnight of `first` to local midnight `days` later, in UTC."""
    tz = app.settings.tz
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(first + timedelta(days=days), datetime.min.time(), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def occurrence_row(app: App, o: Occurrence) -> dict[str, Any]:
    from broadcaster.occurrence import content_to_json

    return {
        "programme": o.programme,
        "channel": o.channel.value,
        "area": o.area,
        "at": app.local(o.at),
        "priority": o.priority.value,
        "level": o.level,
        "duration": int(o.duration.total_seconds()) if o.duration else None,
        "content": content_to_json(o.content),
    }


@click.group("schedule")
def schedule_cmd() -> None:
    """Validate the schedule files and accept their SMS and emergency programmes."""


@schedule_cmd.command("check")
@click.option(
    "--days",
    type=click.IntRange(1, 31),
    default=7,
    show_default=True,
    help="How many days to plan at each level when looking for clashes.",
)
@pass_app
def check_cmd(app: App, days: int) -> None:
    """Check the schedules at every level: errors (exit 1), items that would not air
    (exit 1) and warnings for clashes."""
    from broadcaster.clashes import find_clashes, find_drops
    from broadcaster.planner import plan
    from broadcaster.schedule_files import schedule_dir

    programmes = programmes_or_fail(app)
    layout = layout_or_fail(app)
    tz = app.settings.tz
    start, end = local_span(app.now().astimezone(tz).date() + timedelta(days=1), days, app)
    warnings = []
    errors = _fallback_errors(programmes, layout)
    files = {p.id: p.file for p in programmes}
    for ladder in app.ladders.values():
        tops = [a.code for a in app.registry.all() if a.parent is None and a.ladder == ladder.name]
        for level in ladder.names:
            changes = [
                LevelChange(code, level, start - timedelta(seconds=1), "check", "check")
                for code in tops
            ]
            occurrences = plan(programmes, changes, app.registry, start, end, tz)
            warnings += find_clashes(occurrences, app.registry, tz)
            errors += _not_aired_lines(
                app, files, level, find_drops(occurrences, app.registry, layout, tz)
            )
    if not errors:
        click.echo(
            f"ok: {len(programmes)} programmes in {len(set(files.values()))} files "
            f"under {schedule_dir(app.settings)}"
        )
    for line in errors:
        click.echo(f"error: {line}", err=True)
    for clash in warnings:
        click.echo(f"warning: {clash.describe()}")
    if errors:
        raise SystemExit(1)
    _report_sms(app)


def _report_sms(app: App) -> None:
    """Print the SMS a day per level and what awaits approval (needs the database)."""
    from sqlalchemy.exc import SQLAlchemyError

    from broadcaster.schedule_approval import pending
    from broadcaster.store.db import SchemaOutdated

    try:
        found = pending(app.settings, app.engine)
    except (SchemaOutdated, SQLAlchemyError) as exc:
        click.echo(f"SMS a day: not counted, the database is not ready ({type(exc).__name__})")
        return
    _print_loads(app, found.review.as_json())
    if found.review.pending:
        click.echo(
            f"awaiting `broadcaster schedule approve`: added "
            f"{', '.join(found.review.added) or '-'}; changed "
            f"{', '.join(found.review.changed) or '-'} (the daemon runs the accepted "
            "form until then)"
        )


def _print_loads(app: App, review: dict[str, Any]) -> None:
    currency = app.settings.sms.currency
    rows = [
        r for r in review["sms_a_day"] if r["blasts"] or (r["before"] and r["before"]["blasts"])
    ]
    if not rows:
        click.echo("SMS a day: none scheduled at any level")
    for row in rows:
        before = row["before"]
        was = (
            (
                f"  (accepted: {before['blasts']} blasts, {before['parts']:,} parts, "
                f"{before['cost']:,.0f} {currency})"
            )
            if before
            else ""
        )
        click.echo(
            f"SMS a day at {row['ladder']} {row['level']}: {row['blasts']} blasts, "
            f"{row['messages']:,} messages, {row['parts']:,} parts, "
            f"{row['cost']:,.0f} {currency}{was}"
        )


@schedule_cmd.command("approve")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
@acting
def approve_cmd(app: App, yes: bool, actor: Account) -> None:
    """Accept the schedule files as they are now, as a second account (an approver).

    Shows what changes for the public first: SMS and emergency programmes
    added, changed or removed, and the SMS a day per level with its cost.
    """
    from broadcaster.operations import approve_schedules, schedule_review

    found = schedule_review(app.ops, actor)
    review = found.review
    for key, ids in (
        ("added", review.added),
        ("changed", review.changed),
        ("removed", review.removed),
    ):
        click.echo(f"{key}: {', '.join(ids) or '-'}")
    shown = review.as_json()
    _print_loads(app, shown)
    if not yes:
        click.confirm(
            f"accept these {len(found.files)} schedule files "
            f"(sha256 {found.sha256[:12]}) as {actor.name}?",
            abort=True,
        )
    approve_schedules(app.ops, actor, sha256=found.sha256)
    click.echo(
        f"schedules accepted by {actor.name} (sha256 {found.sha256[:12]}); the daemon reloads them"
    )


def _not_aired_lines(app: App, files: dict[str, Path], level: str, drops: list[Drop]) -> list[str]:
    """One line per programme, item, local time and reason, counting stations over the days."""
    tz = app.settings.tz
    grouped: dict[tuple[str, str, str, str], set[str]] = {}
    for d in drops:
        time = d.at.astimezone(tz).strftime("%H:%M")
        if d.next_slot is not None and d.reason.endswith("next slot"):
            reason = f"{d.reason} at {d.next_slot.astimezone(tz).strftime('%H:%M')}"
        else:
            reason = d.reason
        grouped.setdefault((d.programme, d.item, time, reason), set()).update(d.stations)
    return [
        f"{files.get(programme, '(notice)')}: programme {programme!r}: level {level}: at {time} "
        f"{item!r} would not air at {len(stations)} station{'s' if len(stations) != 1 else ''}: "
        f"{reason}"
        for (programme, item, time, reason), stations in sorted(grouped.items())
    ]


def _fallback_errors(programmes: tuple[Programme, ...], layout: Layout) -> list[str]:
    """A relay's fallback must be a clip in the library, or a failed stream airs nothing."""
    from broadcaster.occurrence import Relay

    ids = layout.library.ids()
    return sorted(
        {
            f"{p.file}: programme {p.id!r}: relay {p.content.name!r}: fallback clip "
            f"{p.content.fallback!r} is not in the audio library ({layout.library.root})"
            for p in programmes
            if isinstance(p.content, Relay) and p.content.fallback and p.content.fallback not in ids
        }
    )
