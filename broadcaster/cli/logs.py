"""`broadcaster logs`: read the daemon's JSON log file, filtered, for admins."""

from __future__ import annotations

import json

import click

from broadcaster.cli.context import App, pass_app
from broadcaster.logquery import SEVERITIES, LogFilter, follow, parse_since, read, render


@click.command("logs")
@click.option("--since", help="Only records from this long ago (2h, 30m, 1d) or this date/time.")
@click.option(
    "--level",
    "severity",
    type=click.Choice(SEVERITIES),
    help="Only records at this severity or worse.",
)
@click.option("--event", help="Only events matching this pattern, e.g. 'level.*'.")
@click.option("--area", help="Only records about this area code.")
@click.option(
    "--follow",
    "-f",
    "keep_following",
    is_flag=True,
    help="Keep printing records as they are written.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@pass_app
def command(
    app: App,
    since: str | None,
    severity: str | None,
    event: str | None,
    area: str | None,
    keep_following: bool,
    fmt: str,
) -> None:
    """Show the log records that match every filter given."""
    settings = app.settings
    start = parse_since(since, app.now(), settings.tz) if since else None
    log_filter = LogFilter(since=start, severity=severity, event=event, area=area)
    path = settings.log_file
    if not path.exists():
        raise click.ClickException(f"no log file yet at {path} (logging.file in {settings.path})")

    def show(record: dict) -> None:
        line = (
            json.dumps(record, ensure_ascii=False) if fmt == "json" else render(record, settings.tz)
        )
        click.echo(line)

    for record in read(path, log_filter):
        show(record)
    if keep_following:
        try:
            for record in follow(path, log_filter, stop=lambda: False):
                show(record)
        except KeyboardInterrupt:
            pass
