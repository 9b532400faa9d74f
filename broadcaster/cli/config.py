"""`broadcaster config check`: validate a config and summarise what it describes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from broadcaster.cli.context import App, pass_app

if TYPE_CHECKING:
    from broadcaster.config import Settings


@click.group("config")
def command() -> None:
    """Check the configuration."""


@command.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def check(app: App, path: Path | None) -> None:
    """Validate PATH (default: --config) and print a summary; exit 1 on any problem."""
    from broadcaster.config import load_settings

    settings = load_settings(path or app.config_path)
    click.echo(summary(settings))


def summary(settings: Settings) -> str:
    registry = settings.registry()
    kinds: dict[str, int] = {}
    for area in registry.all():
        kinds[area.kind.value] = kinds.get(area.kind.value, 0) + 1
    lines = [
        f"{settings.path}: OK",
        f"  time zone   {settings.timezone}",
        f"  data dir    {settings.data_dir}",
        f"  storage     {_safe_url(settings.storage_url)}",
        f"  http        {settings.http.bind} (public {settings.public_url})",
        f"  log file    {settings.log_file} ({settings.logging.level})",
        "  areas       " + ", ".join(f"{n} {k}s" for k, n in kinds.items()),
    ]
    for name, ladder in settings.ladder_objects().items():
        lines.append(
            f"  ladder      {name}: {' < '.join(ladder.names)}"
            + (" (case thresholds)" if ladder.has_thresholds else "")
        )
    for name, carrier in settings.carriers.items():
        lines.append(
            f"  carrier     {name}: {carrier.host}:{carrier.port} as {carrier.system_id}, "
            f"{carrier.rate:g} msg/s, window {carrier.window}, "
            f"{len(carrier.prefixes)} prefixes"
        )
    for name, relay in settings.relays.items():
        lines.append(f"  relay       {name}: {relay.url}, fallback clip {relay.fallback}")
    return "\n".join(lines)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
