"""Loudspeaker commands: `audio import|list|publish`, `serve`, `stations`, `asrun`, `notice`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from broadcaster.accounts import Account
from broadcaster.audio.kinds import ClipKind
from broadcaster.cli.actor import acting, acting_if_stored
from broadcaster.cli.context import App, config_option, format_option, pass_app

if TYPE_CHECKING:
    from broadcaster.audio.library import Library
    from broadcaster.programmes import Programme


class _AudioGroup(click.Group):
    """Show library and rendering problems as one clean error line."""

    def invoke(self, ctx: click.Context) -> object:
        from broadcaster.audio.library import LibraryError
        from broadcaster.audio.render import RenderError
        from broadcaster.store.library import VersionRefused

        try:
            return super().invoke(ctx)
        except (LibraryError, RenderError, VersionRefused) as exc:
            raise click.ClickException(str(exc)) from exc


def _library(app: App, *, fetch: bool = True) -> Library:
    """What this node airs from: its folder, and the clips shared by every node when a
    database answers (`fetch`: with their bytes in this node's cache)."""
    from broadcaster.audio.sharing import node_library

    return node_library(app.settings, app.engine_if_ready(), fetch=fetch)


@click.group("audio", cls=_AudioGroup)
def audio() -> None:
    """The clip library and playlist publishing."""


@audio.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title", help="What the clip says, for people (a recording: the programme's).")
@click.option("--language", help="ISO 639 code: vi, tyz, ium, nut, … (a recording: vi).")
@click.option(
    "--kind",
    type=click.Choice([k.value for k in ClipKind if k != "recording"]),
    default="bulletin",
    show_default=True,
)
@click.option("--id", "clip_id", help="Library id shared by language variants (default: name).")
@click.option("--valid-from", type=click.DateTime(["%Y-%m-%d"]), help="First day it may air.")
@click.option("--valid-until", type=click.DateTime(["%Y-%m-%d"]), help="Last day it may air.")
@click.option("--replace", is_flag=True, help="Swap an existing clip of that id and language.")
@click.option(
    "--for",
    "for_programme",
    metavar="PROGRAMME",
    help="A recorded bulletin: the relay programme it airs in place of (with --at).",
)
@click.option(
    "--at",
    "at",
    nargs=2,
    metavar="DATE TIME",
    help="With --for: the local date and time of the relay it replaces.",
)
@pass_app
@acting_if_stored
def import_cmd(
    app: App,
    actor: Account | None,
    file: Path,
    title: str | None,
    language: str | None,
    kind: str,
    clip_id: str | None,
    valid_from: datetime | None,
    valid_until: datetime | None,
    replace: bool,
    for_programme: str | None,
    at: tuple[str, str] | None,
) -> None:
    """Add FILE to the library with its duration and SHA-256. With a database it is kept
    there, for every node, as a new version under your account that airs once a second
    account runs `audio approve` (unless [audio] clip_requires_approval = false); on
    files alone it is copied into the library folder and airs at the next publish.

    With --for PROGRAMME --at DATE TIME the file is a recorded bulletin: it airs
    as an ordinary clip in place of that relay occurrence only.
    """
    from broadcaster import operations as ops
    from broadcaster.audio.library import import_clip

    recorded_for = None
    areas: tuple[str, ...] = ()
    if for_programme is not None or at is not None:
        programme, moment = _recording_target(app, for_programme, at)
        areas = programme.areas
        recorded_for = (programme.id, moment)
        local = moment.astimezone(app.settings.tz)
        clip_id = clip_id or f"{programme.id}-{local:%Y%m%d-%H%M}"
        title = title or f"{programme.title} ({local:%d/%m/%Y %H:%M}, ghi âm)"
        language = language or "vi"
        kind = ClipKind.RECORDING.value
    if title is None or language is None:
        raise click.UsageError("--title and --language are required (unless --for … --at …)")
    fields: dict[str, Any] = {
        "clip_id": clip_id,
        "title": title,
        "language": language,
        "kind": ClipKind(kind),
        "replace": replace,
        "valid_from": valid_from.date() if valid_from else None,
        "valid_until": valid_until.date() if valid_until else None,
        "recorded_for": recorded_for,
    }
    if actor is None:
        _, clip = import_clip(_library(app), file, **fields)
        click.echo(
            f"{clip.id} [{clip.language}] {clip.kind} {clip.duration:.2f}s "
            f"sha256 {clip.sha256[:12]}… -> {clip.file} (the folder only: no database)"
        )
    else:
        made = ops.import_clip(app.ops, actor, file, areas=areas, **fields)
        shared = made.version.clip
        click.echo(
            f"clip version #{made.version.version}: {shared.id} [{shared.language}] "
            f"{shared.kind} {shared.duration:.2f}s sha256 {shared.sha256[:12]}… "
            f"imported by {actor.name}"
        )
        if made.report is None:
            click.echo(
                f"it airs once a second account approves it: "
                f"`broadcaster audio approve {made.version.version}`"
            )
        else:
            click.echo(f"on the air: {made.report.stations} stations republished")
    if recorded_for is not None:
        click.echo(
            f"airs in place of the relay of {recorded_for[0]!r} at {app.local(recorded_for[1])}"
        )


def _recording_target(
    app: App, programme_id: str | None, at: tuple[str, str] | None
) -> tuple[Programme, datetime]:
    """The relay programme and the instant a recording stands in for, or a clear error."""
    from broadcaster.occurrence import Channel
    from broadcaster.schedule_files import ScheduleError, load_programmes

    if programme_id is None or at is None:
        raise click.UsageError("a recorded bulletin needs both --for PROGRAMME and --at DATE TIME")
    try:
        programmes = load_programmes(app.settings)
    except ScheduleError as exc:
        raise click.ClickException(f"invalid schedules:\n{exc}") from None
    relays = {p.id: p for p in programmes if p.channel is Channel.RELAY}
    programme = relays.get(programme_id)
    if programme is None:
        raise click.BadParameter(
            f"{programme_id!r} is not a relay programme; relay programmes: "
            f"{', '.join(sorted(relays)) or 'none'}",
            param_hint="--for",
        )
    try:
        moment = datetime.strptime(" ".join(at), "%Y-%m-%d %H:%M").replace(tzinfo=app.settings.tz)
    except ValueError:
        raise click.BadParameter(
            f"{' '.join(at)!r}: use DATE TIME as 2021-09-10 06:00", param_hint="--at"
        ) from None
    times = sorted({t.strftime("%H:%M") for c in programme.cadences.values() if c for t in c.times})
    if moment.strftime("%H:%M") not in times:
        raise click.BadParameter(
            f"{programme.id!r} airs at no level at {moment:%H:%M}; its times: {', '.join(times)}",
            param_hint="--at",
        )
    return programme, moment


@audio.command("list")
@format_option
@pass_app
def list_cmd(app: App, fmt: str) -> None:
    """List the clips in the library."""
    clips = sorted(_library(app, fetch=False).clips, key=lambda c: (c.id, c.language))
    if fmt == "json":
        app.echo_json(
            [
                {
                    "id": c.id,
                    "language": c.language,
                    "kind": c.kind.value,
                    "title": c.title,
                    "file": str(c.file),
                    "duration": c.duration,
                    "sha256": c.sha256,
                    "valid_from": c.valid_from,
                    "valid_until": c.valid_until,
                    "for_programme": c.for_programme,
                    "airs_at": app.local(c.airs_at),
                }
                for c in clips
            ]
        )
        return
    for c in clips:
        valid = (
            f"  valid {c.valid_from or '…'}–{c.valid_until or '…'}"
            if (c.valid_from or c.valid_until)
            else ""
        )
        click.echo(f"{c.id:<20} {c.language:<4} {c.kind:<9} {c.duration:7.2f}s  {c.title}{valid}")


@audio.command("approve")
@click.argument("version", type=int)
@pass_app
@acting
def approve_cmd(app: App, version: int, actor: Account) -> None:
    """Put an imported clip version on the air as a second account: it replaces the
    clip's live version and every station is republished with it."""
    from broadcaster import operations as ops

    made, report = ops.approve_clip(app.ops, actor, version)
    click.echo(
        f"clip version #{made.version} ({made.clip.id} [{made.clip.language}]) approved by "
        f"{actor.name}; on the air: {report.stations} stations republished"
    )


@audio.command("withdraw")
@click.argument("version", type=int)
@pass_app
@acting
def withdraw_cmd(app: App, version: int, actor: Account) -> None:
    """Take a clip version off the air, or out of the approval queue, at once (no second
    account needed); the folder's clip of that id, if any, airs again."""
    from broadcaster import operations as ops

    made, report = ops.withdraw_clip(app.ops, actor, version)
    click.echo(
        f"clip version #{made.version} ({made.clip.id} [{made.clip.language}]) withdrawn by "
        f"{actor.name}; {report.stations} stations republished without it"
    )


@audio.command("versions")
@click.option("--all", "everything", is_flag=True, help="Also superseded and withdrawn ones.")
@format_option
@pass_app
def versions_cmd(app: App, everything: bool, fmt: str) -> None:
    """List the imported clip versions: pending (awaiting a second account) and live."""
    from broadcaster.store.library import VersionState, versions

    states = () if everything else (VersionState.PENDING, VersionState.LIVE)
    found = versions(app.engine, *states)
    if fmt == "json":
        app.echo_json(
            [
                {
                    "version": v.version,
                    "id": v.clip.id,
                    "language": v.clip.language,
                    "kind": v.clip.kind,
                    "title": v.clip.title,
                    "duration": v.clip.duration,
                    "sha256": v.clip.sha256,
                    "state": v.state.value,
                    "areas": list(v.areas),
                    "imported_at": app.local(v.imported_at),
                    "imported_by": v.imported_name,
                    "node": v.node,
                    "decided_at": app.local(v.decided_at),
                }
                for v in found
            ]
        )
        return
    for v in found:
        click.echo(
            f"#{v.version:<5} {v.state.value:<10} {v.clip.id:<20} {v.clip.language:<4} "
            f"{v.clip.duration:7.2f}s  {v.clip.title}  (by {v.imported_name}, "
            f"{app.local(v.imported_at)})"
        )


@audio.command("publish")
@pass_app
def publish_cmd(app: App) -> None:
    """Republish today and tomorrow from the last published plan and the live notices."""
    from broadcaster.audio.notice import republish
    from broadcaster.audio.publish import publisher

    report = republish(
        app.engine, app.registry, publisher(app.settings, app.engine), _library(app), now=app.now()
    )
    click.echo(
        f"{report.stations} stations, {report.slots} slots: {report.written} files "
        f"written, {report.unchanged} unchanged, {report.removed} removed, "
        f"{len(report.dropped)} items dropped"
    )


@click.command("serve")
@pass_app
def serve(app: App) -> None:
    """Run the station API, `/api/v1` and the console alone (the daemon runs them too)."""
    from broadcaster.api import make_api
    from broadcaster.audio.publish import publisher, stations
    from broadcaster.console import make_console
    from broadcaster.web import make_app, uvicorn_server

    settings = app.settings
    web = make_app(
        publisher(settings, app.engine),
        frozenset(stations(app.registry)),
        engine=app.engine,
        clock=app.now,
        max_body=settings.audio.max_report_bytes,
        operations_api=make_api(app.ops),
        areas=app.registry,
        console=make_console(app.ops),
    )
    uvicorn_server(web, settings.http.bind).run()


@click.command("stations")
@format_option
@pass_app
def stations_cmd(app: App, fmt: str) -> None:
    """List stations: health (last seen, state), token, and their current or next slot."""
    from broadcaster.audio.publish import current_and_next, playlist_url, publisher, stations
    from broadcaster.report.gather import HEALTH_FIELDS, station_health
    from broadcaster.store.db import NoDatabase
    from broadcaster.store.published import ever_published

    now = app.now()
    try:
        # Before the first publication there are no URLs to show, and building the
        # publisher would store the token secret: a listing must not write.
        published = ever_published(app.engine)
        health = station_health(app.settings, app.engine, now)
    except NoDatabase:  # a fresh install: nothing published, no station heard of yet
        published, health = False, {}
    pub = publisher(app.settings, app.engine) if published else None
    rows = []
    for code, area in stations(app.registry).items():
        current, upcoming = current_and_next(pub, code, now) if pub else (None, None)
        slot = current or upcoming
        seen = health.get(code) or dict.fromkeys(HEALTH_FIELDS) | {"state": "offline"}
        rows.append(
            {
                "station": code,
                "area": area.code,
                "name": area.name,
                "state": seen["state"],
                "last_seen": app.local(seen["last_seen"]),
                "cache_until": seen["cache_until"],
                "last_aired": seen["last_aired"],
                "last_aired_at": app.local(seen["last_aired_at"]),
                "player": seen["player"],
                "version": seen["version"],
                "token": pub.tokens.for_station(code) if pub else None,
                "slot": slot.id if slot else None,
                "start": app.local(slot.start) if slot else None,
                "playlist_url": playlist_url(pub, slot) if pub and slot else None,
                "manifest_url": playlist_url(pub, slot, ".json") if pub and slot else None,
            }
        )
    if fmt == "json":
        app.echo_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['station']:<14} {row['area']:<6} {row['state']:<8} "
            f"seen {row['last_seen'] or 'never'}  cache to {row['cache_until'] or '-'}  "
            f"next {row['start'] or 'nothing published'}  {row['playlist_url'] or ''}"
        )


@click.command("asrun")
@click.option("--station", help="Only this station.")
@click.option(
    "--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="Local day (default: today)."
)
@click.option(
    "--gaps",
    "gaps_day",
    type=click.DateTime(["%Y-%m-%d"]),
    metavar="DATE",
    help="List instead, per station, the items planned that DATE with no report of airing.",
)
@format_option
@pass_app
def asrun(
    app: App, station: str | None, day: datetime | None, gaps_day: datetime | None, fmt: str
) -> None:
    """Show what stations reported airing (the as-run log), or what did not air."""
    from broadcaster.store.audio import load_asrun

    if gaps_day is not None:
        _gaps(app, gaps_day.date(), station, fmt)
        return
    tz = app.settings.tz
    local_day = day.date() if day else app.now().astimezone(tz).date()
    start = datetime.combine(local_day, time(), tz)
    rows = load_asrun(app.engine, station, start, _next_midnight(local_day, tz))
    if fmt == "json":
        app.echo_json(
            [
                {
                    "station": r.station,
                    "slot": r.slot,
                    "item": r.item,
                    "started": app.local(r.started),
                    "finished": app.local(r.finished),
                    "received": app.local(r.received),
                    "event": r.event.value if r.event else None,
                    "aired": r.aired,
                    "day": r.day,
                    "programme": r.programme,
                    "reason": r.reason,
                    "id": r.report_id,
                }
                for r in rows
            ]
        )
        return
    if not rows:
        click.echo(f"no playback reported on {local_day}")
    for r in rows:
        what = r.event.value if r.event else "aired"
        why = f"  ({r.reason})" if r.reason else ""
        click.echo(
            f"{app.local(r.started)}  {r.station:<14} {r.slot or '-':<6} {what:<11} {r.item}"
            f"  until {app.local(r.finished) or '?'}{why}"
        )


def _gaps(app: App, day: date, station: str | None, fmt: str) -> None:
    from broadcaster.report.gather import day_gaps

    found = day_gaps(app.settings, app.engine, day, app.now(), [station] if station else None)
    if fmt == "json":
        app.echo_json(
            {
                g.station: {
                    "published": g.published,
                    "gaps": [
                        {
                            "slot": x.slot,
                            "item": x.item,
                            "programme": x.programme,
                            "kind": x.kind,
                            "at": app.local(x.at),
                        }
                        for x in g.gaps
                    ],
                }
                for g in found
            }
        )
        return
    for g in found:
        if not g.published:
            click.echo(f"{g.station:<14} nothing published for {day} (or no longer kept)")
        elif not g.gaps:
            click.echo(f"{g.station:<14} everything due aired")
        for x in g.gaps:
            click.echo(
                f"{g.station:<14} {app.local(x.at)}  {x.slot:<6} {x.programme or x.kind:<20}"
                f" {x.item}  not aired"
            )


def _next_midnight(day: date, tz: object) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tz)  # type: ignore[arg-type]


@click.group("notice", invoke_without_command=True, cls=_AudioGroup)
@click.option("--area", "areas", multiple=True, help="Area code (repeat for several).")
@click.option(
    "--audio",
    "audio_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A recorded notice.",
)
@click.option("--text", help="Text to speak with espeak-ng (Vietnamese voice).")
@click.option("--by", help="Optional check: the name of the account you act as.")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BROADCASTER_TOKEN_FILE",
    help="Act as this API token's account.",
)
@config_option
@click.pass_context
def notice(
    ctx: click.Context,
    areas: tuple[str, ...],
    audio_file: Path | None,
    text: str | None,
    by: str | None,
    token_file: Path | None,
    config_path: Path | None,
) -> None:
    """Put an emergency notice at the head of the affected stations' current playlists."""
    if ctx.invoked_subcommand is not None:
        return
    if not areas:
        raise click.UsageError("notice needs --area CODE… and --audio FILE or --text TEXT")
    ctx.invoke(
        _issue,
        config_path=config_path,
        areas=areas,
        audio_file=audio_file,
        text=text,
        by=by,
        token_file=token_file,
    )


@pass_app
@acting
def _issue(
    app: App, areas: tuple[str, ...], audio_file: Path | None, text: str | None, actor: Account
) -> None:
    from broadcaster import operations as ops

    issued = ops.issue_notice(app.ops, actor, areas=list(areas), text=text, audio=audio_file)
    made = issued.notice
    if issued.published is None:
        click.echo(
            f"notice #{made.id} drafted by {actor.name}; it airs when a second account runs "
            f"`broadcaster notice approve {made.id}`"
        )
    else:
        click.echo(f"notice #{made.id} on the air at {issued.published.stations} stations")
    for preview in issued.sms:
        cost = (
            f"{preview.recipients} recipients × {preview.parts} {preview.encoding} parts "
            f"= {preview.total_sms} SMS"
        )
        if issued.sms_queued:
            click.echo(f"SMS blast #{preview.id} queued ({cost})")
        else:
            click.echo(
                f"SMS blast #{preview.id} drafted ({cost}); a second account sends it "
                f"with `broadcaster sms approve {preview.id}`"
            )


@notice.command("approve")
@click.argument("notice_id", type=int)
@pass_app
@acting
def approve(app: App, notice_id: int, actor: Account) -> None:
    """Approve a drafted notice as a second account; it goes on the air at once."""
    from broadcaster import operations as ops

    made, report = ops.approve_notice(app.ops, actor, notice_id)
    click.echo(
        f"notice #{made.id} approved by {actor.name}; on the air at {report.stations} stations"
    )


@notice.command("retract")
@click.argument("notice_id", type=int)
@pass_app
@acting
def retract_cmd(app: App, notice_id: int, actor: Account) -> None:
    """Take a notice off the air at once (no second account needed): it leaves every
    affected station's next poll."""
    from broadcaster import operations as ops

    made, report = ops.retract_notice(app.ops, actor, notice_id)
    click.echo(
        f"notice #{made.id} retracted by {actor.name} at {app.local(made.retracted_at)}; "
        f"{report.stations} stations republished without it"
    )


commands = (audio, serve, stations_cmd, asrun, notice)
