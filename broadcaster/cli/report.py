"""`broadcaster report daily`: the morning report of seed 002 for a district."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import click

from broadcaster.cli.context import App, pass_app


@click.group("report")
def command() -> None:
    """Reports for the steering committee."""


@command.command("daily")
@click.option(
    "--date",
    "day",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Local day reported (default: yesterday, as written each morning).",
)
@click.option("--district", help="District code (default: the config's only district).")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv", "html"]), default="json", show_default=True
)
@pass_app
def daily(app: App, day: datetime | None, district: str | None, fmt: str) -> None:
    """Per commune: planned vs aired by programme, van rounds, stations offline, SMS."""
    from broadcaster.report.gather import build_daily
    from broadcaster.report.writer import render, sole_district

    now = app.now()
    local_day = day.date() if day else now.astimezone(app.settings.tz).date() - timedelta(days=1)
    report = build_daily(
        app.settings, app.engine, district or sole_district(app.registry), local_day, now
    )
    text = render(report, fmt, app.settings.tz)
    click.echo(
        text if fmt != "json" else json.dumps(json.loads(text), ensure_ascii=False, indent=2),
        nl=fmt == "json",
    )
