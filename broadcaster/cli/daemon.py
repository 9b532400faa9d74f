"""`broadcaster run`, `status` and `reload`: the daemon and how operators talk to it."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from broadcaster.cli.context import App, format_option, pass_app


@click.command("run")
@click.option("--no-web", is_flag=True, help="Do not serve the station API from this process.")
@click.option("--no-sms", is_flag=True, help="Do not run the SMPP senders in this process.")
@pass_app
def run_cmd(app: App, no_web: bool, no_sms: bool) -> None:
    """Run the daemon: plan, fire on time, send SMS, publish playlists, serve stations
    and `/api/v1`."""
    from broadcaster.audio.publish import publisher, stations
    from broadcaster.audio.service import (
        AIRED_CHANNELS,
        PlaylistService,
        published_ahead_handler,
    )
    from broadcaster.beacon import NodeBeacon
    from broadcaster.daemon import Daemon
    from broadcaster.dispatch import default_handlers
    from broadcaster.nodes import NodeRole
    from broadcaster.occurrence import Channel
    from broadcaster.report.writer import ReportWriter
    from broadcaster.schedule_files import ScheduleError
    from broadcaster.sms.scheduled import SmsHandler
    from broadcaster.sms.sender import run_senders
    from broadcaster.store.changes import ChangeListener, Topic
    from broadcaster.store.nodes import NodeNameTaken
    from broadcaster.web import BackgroundServer, make_app

    app.console_logs = True
    settings = app.settings
    app.save_essentials()
    handlers = default_handlers(settings)
    aired = published_ahead_handler(settings, app.engine)
    for channel in AIRED_CHANNELS:
        handlers[channel] = aired
    handlers[Channel.SMS] = SmsHandler(settings, app.engine, app.now)
    playlists = PlaylistService(settings, app.engine)
    sms_stop = threading.Event()
    on_stop: list[Callable[[], None]] = [sms_stop.set, lambda: playlists.stop(timeout=0)]
    try:
        daemon = Daemon(
            settings, app.engine, handlers, observers=[playlists.plan_changed], on_stop=on_stop
        )
    except ScheduleError as exc:
        raise click.ClickException("invalid schedules:\n" + str(exc)) from None
    changes = ChangeListener(app.engine)
    changes.subscribe([Topic.LEVELS, Topic.SCHEDULES], daemon.wake)
    changes.subscribe([Topic.NOTICES, Topic.LIBRARY], playlists.wake)
    daemon.on_stop += (changes.stop,)
    beacon = NodeBeacon(
        app.engine,
        settings.node_name,
        None if no_web else settings.http.bind,
        [] if no_sms else list(settings.carriers),
        lambda: NodeRole.LEADER if daemon.lock.held else NodeRole.STANDBY,
        app.now,
    )
    try:
        beacon.start()  # before the senders: peers count this node before it sends
    except NodeNameTaken as exc:
        raise click.ClickException(str(exc)) from None
    senders = threading.Thread(
        target=run_senders, args=(settings, app.engine, sms_stop), name="sms-senders", daemon=True
    )
    if not no_sms:
        senders.start()
    if not no_web:
        from broadcaster.api import make_api
        from broadcaster.console import make_console

        web = BackgroundServer(
            make_app(
                publisher(settings, app.engine),
                frozenset(stations(app.registry)),
                engine=app.engine,
                clock=app.now,
                max_body=settings.audio.max_report_bytes,
                areas=app.registry,
                operations_api=make_api(app.ops),
                console=make_console(app.ops),
                node_plan=daemon.plan_view,
                node=daemon.node,
            ),
            settings.http.bind,
        )
        web.start()
        daemon.on_stop += (lambda: web.stop(timeout=2),)
    reports = ReportWriter(settings, app.engine)
    daemon.on_stop += (reports.stop,)
    reports.start()
    playlists.start()
    changes.start()
    daemon.on_stop += (beacon.stop,)
    clean = daemon.run()
    if senders.is_alive():
        senders.join(timeout=1.5)
    if not clean:
        # Work still running after the stop deadline, or the scheduler lock lost: leave
        # now rather than hang; claimed rows stay claimed, and the next scheduler fires
        # them again.
        os._exit(1)


@click.command("status")
@format_option
@pass_app
def status_cmd(app: App, fmt: str) -> None:
    """Show whether the daemon runs, the levels it sees, what comes next, counts, errors."""
    status = status_of(app)
    if fmt == "json":
        app.echo_json(status)
        return
    state = "running" if status["running"] else "not running"
    click.echo(f"daemon: {state} ({status['node'] or '-'}; heartbeat {status['heartbeat_at']})")
    click.echo(f"planned at: {status['planned_at'] or '-'}")
    click.echo("levels: " + ", ".join(f"{a} {lv}" for a, lv in status["levels"].items()))
    click.echo("counts: " + (", ".join(f"{k} {v}" for k, v in status["counts"].items()) or "-"))
    click.echo("next:")
    for item in status["next"]:
        click.echo(
            f"  {item['at']}  {item['programme']}  {item['channel']}  {item['area']}  "
            f"{item['priority']}"
        )
    for node in status["nodes"]:
        shown = ", ".join(f"{c} {'up' if up else 'down'}" for c, up in node["binds"].items())
        click.echo(
            f"node {node['name']}: {node['role']}  {node['host']} pid {node['pid']}  "
            f"http {node['http'] or '-'}  heartbeat {node['heartbeat']}  binds {shown or '-'}"
        )
    if takeover := status["takeover"]:
        click.echo(
            f"took over: {takeover['at']} from {', '.join(takeover['from'])}; "
            f"{takeover['refire']} claim(s) fired again, {takeover['missed']} missed"
        )
    for error in status["errors"]:
        click.echo(f"error: {error['at']} {error['event']}: {error['detail']}")
    if status["awaiting_approval"]:
        click.echo(
            "awaiting `broadcaster schedule approve`: " + ", ".join(status["awaiting_approval"])
        )


def status_of(app: App) -> dict[str, Any]:
    from broadcaster.nodes import lost_after, state
    from broadcaster.store.read import (
        HEARTBEAT_SECONDS,
        STALE_AFTER,
        daemon_status,
        dispatch_counts,
        nodes,
    )

    with app.reading() as db:
        row, counts, members = daemon_status(db), dispatch_counts(db), nodes(db)
    now, quiet_limit = app.now(), lost_after(HEARTBEAT_SECONDS)
    report: dict[str, Any] = json.loads(row.report) if row else {}
    running = bool(
        row
        and row.stopped_at is None
        and row.heartbeat_at is not None
        and now - row.heartbeat_at < STALE_AFTER
    )
    return {
        "running": running,
        "node": row.node if row else None,
        "pid": row.pid if row else None,
        "started_at": app.local(row.started_at) if row else None,
        "heartbeat_at": app.local(row.heartbeat_at) if row else None,
        "levels": report.get("levels", {}),
        "planned_at": _local_text(app, report.get("planned_at")),
        "planned": report.get("planned", {}),
        "next": [{**item, "at": _local_text(app, item["at"])} for item in report.get("next", [])],
        "counts": counts,
        "errors": report.get("errors", []),
        "awaiting_approval": report.get("awaiting_approval", []),
        "nodes": [
            {
                "name": node.name,
                "host": node.host,
                "pid": node.pid,
                "http": node.http_bind,
                "role": state(node, now, quiet_limit).value,
                "heartbeat": app.local(node.heartbeat_at),
                "started": app.local(node.started_at),
                "binds": dict(node.binds),
            }
            for node in members
        ],
        "takeover": report.get("takeover"),
    }


def _local_text(app: App, text: str | None) -> str | None:
    return app.local(datetime.fromisoformat(text)) if text else None


@click.command("reload")
@pass_app
def reload_cmd(app: App) -> None:
    """Ask the running daemon to re-read the schedule files (like SIGHUP)."""
    from broadcaster.store import dispatch as store

    if not store.request_reload(app.engine):
        raise click.ClickException("no daemon has run on this database yet")
    click.echo("reload requested; `broadcaster status` shows the result")
