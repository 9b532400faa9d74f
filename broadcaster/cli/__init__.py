"""The `broadcaster` command: thin click commands over the domain modules."""

from __future__ import annotations

from pathlib import Path

import click

from broadcaster.cli import areas, audio, config, db, level, logs, sms, users
from broadcaster.cli import daemon as daemon_cli
from broadcaster.cli import plan as plan_cli
from broadcaster.cli.context import App, DomainGroup, config_option


@click.group(cls=DomainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@config_option
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Alert-level driven broadcasting: SMS blasts and loudspeaker playlists."""
    if config_path is not None:
        ctx.obj = App(config_path)


for module in (config, db, areas, level, logs, sms, users):
    main.add_command(module.command)
main.add_command(sms.subscribers)
main.add_command(sms.smsc)
main.add_command(plan_cli.plan_cmd)
main.add_command(plan_cli.schedule_cmd)
main.add_command(daemon_cli.run_cmd)
main.add_command(daemon_cli.status_cmd)
main.add_command(daemon_cli.reload_cmd)
for command in audio.commands:
    main.add_command(command)
