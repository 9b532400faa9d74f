"""`broadcaster areas`: the area tree as configured."""

from __future__ import annotations

import click

from broadcaster.cli.context import App, format_option, pass_app


@click.command("areas")
@format_option
@pass_app
def command(app: App, fmt: str) -> None:
    """List provinces, districts and communes with their ladder, languages and station."""
    registry = app.registry
    rows = [
        {
            "code": a.code,
            "name": a.name,
            "kind": a.kind.value,
            "parent": a.parent,
            "ladder": a.ladder,
            "languages": list(a.languages),
            "station": a.station.code if a.station else None,
        }
        for a in registry.all()
    ]
    if fmt == "json":
        app.echo_json(rows)
        return
    for area in registry.all():
        indent = "  " * len(registry.ancestors(area.code))
        extra = (
            f"  [{', '.join(area.languages)}] station {area.station.code}" if area.station else ""
        )
        click.echo(f"{indent}{area.code}  {area.name} ({area.kind.value}, {area.ladder}){extra}")
