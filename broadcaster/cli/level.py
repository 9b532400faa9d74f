"""`broadcaster level set|show|history|suggest`: alert levels, audited."""

from __future__ import annotations

from typing import Any

import click

from broadcaster.accounts import Account
from broadcaster.cli.actor import acting
from broadcaster.cli.context import App, format_option, pass_app
from broadcaster.levels import InForce, LevelChange, latest_changes, level_in_force


@click.group("level")
def command() -> None:
    """Set and audit the alert level of an area."""


@command.command("set")
@click.argument("area")
@click.argument("level")
@click.option("--reason", required=True, help="Why: the decision or case count behind it.")
@pass_app
@acting
def set_cmd(app: App, area: str, level: str, reason: str, actor: Account) -> None:
    """Set LEVEL on AREA as your account; the areas below it follow unless they have their own."""
    from broadcaster.operations import set_level

    change = set_level(app.ops, actor, area=area, level=level, reason=reason)
    below = len(app.registry.descendants(area))
    click.echo(
        f"{area} {app.registry.get(area).name}: {change.previous or '-'} -> {change.level}"
        f" (by {change.by}, {app.local(change.at)})"
        + (f"; applies to {below} areas below unless they have their own" if below else "")
    )


@command.command("show")
@click.argument("area", required=False)
@format_option
@pass_app
def show_cmd(app: App, area: str | None, fmt: str) -> None:
    """Show the level in force for AREA and the areas below it (default: all)."""
    from broadcaster.store.levels import load_changes

    registry = app.registry
    areas = [registry.get(area), *registry.descendants(area)] if area else registry.all()
    latest = latest_changes(load_changes(app.engine))
    rows = [
        _in_force_row(app, level_in_force(a.code, registry, app.ladders, latest)) for a in areas
    ]
    if fmt == "json":
        app.echo_json(rows)
        return
    for row in rows:
        indent = "  " * len(registry.ancestors(row["area"]))
        origin = (
            f"from {row['inherited_from']}"
            if "inherited_from" in row
            else (f"since {row['since']} by {row['by']}" if row["since"] else "configured default")
        )
        click.echo(f"{indent}{row['area']}  {row['name']}: level {row['level']}  ({origin})")


@command.command("history")
@click.argument("area", required=False)
@format_option
@pass_app
def history_cmd(app: App, area: str | None, fmt: str) -> None:
    """List level decisions, oldest first; for AREA, also those on the areas above it."""
    from broadcaster.store.levels import load_changes

    scope = None
    if area:
        scope = [area, *(a.code for a in app.registry.ancestors(area))]
    changes = load_changes(app.engine, scope)
    if fmt == "json":
        app.echo_json([_change_row(app, c) for c in changes])
        return
    if not changes:
        click.echo("no level changes recorded")
    for c in changes:
        click.echo(
            f"{app.local(c.at)}  {c.area}  {c.previous or '-'} -> {c.level}  by {c.by}: {c.reason}"
        )


@command.command("suggest")
@click.option(
    "--cases",
    type=click.IntRange(min=0),
    required=True,
    help="Confirmed cases counted for the area.",
)
@click.option(
    "--ladder", "ladder_name", help="Ladder with case thresholds (default: the only one)."
)
@format_option
@pass_app
def suggest_cmd(app: App, cases: int, ladder_name: str | None, fmt: str) -> None:
    """Suggest the level that a confirmed-case count reaches on a ladder."""
    with_thresholds = [n for n, lad in app.ladders.items() if lad.has_thresholds]
    if ladder_name is None:
        if len(with_thresholds) != 1:
            raise click.UsageError(
                "--ladder is needed; ladders with case thresholds: "
                + (", ".join(with_thresholds) or "none")
            )
        ladder_name = with_thresholds[0]
    if ladder_name not in app.ladders:
        raise click.UsageError(f"unknown ladder {ladder_name!r}; known: {', '.join(app.ladders)}")
    level = app.ladders[ladder_name].suggest(cases)
    if fmt == "json":
        app.echo_json(
            {"ladder": ladder_name, "cases": cases, "level": level.name, "label": level.label}
        )
    else:
        click.echo(
            f"{cases} cases on {ladder_name}: level {level.name}"
            + (f" ({level.label})" if level.label else "")
        )


def _in_force_row(app: App, f: InForce) -> dict[str, Any]:
    area = app.registry.get(f.area)
    row: dict[str, Any] = {
        "area": f.area,
        "name": area.name,
        "ladder": area.ladder,
        "level": f.level,
        "since": app.local(f.since),
        "by": f.by,
        "reason": f.reason,
    }
    if f.inherited_from is not None:
        row["inherited_from"] = f.inherited_from
    return row


def _change_row(app: App, c: LevelChange) -> dict[str, Any]:
    return {
        "area": c.area,
        "level": c.level,
        "previous": c.previous,
        "at": app.local(c.at),
        "by": c.by,
        "reason": c.reason,
    }
