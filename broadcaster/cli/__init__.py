"""The `broadcaster` command: thin click commands over the domain modules.

Commands are imported when they run, not when the program starts: a command
names its module here and only that module (and what it needs) is loaded, so
`broadcaster status` does not pay for the web server, the scheduler or the
SMPP stack. Command modules keep their heavy imports inside the command
bodies so that `--help`, which lists every command, stays light too
(`bench/cli.py` measures it; `tests/test_cli_startup.py` pins it).
"""

from __future__ import annotations

from pathlib import Path

import click

from broadcaster.cli.context import App, DomainGroup, config_option
from broadcaster.cli.lazy import LazyGroup

COMMANDS = {
    "config": "broadcaster.cli.config:command",
    "db": "broadcaster.cli.db:command",
    "areas": "broadcaster.cli.areas:command",
    "level": "broadcaster.cli.level:command",
    "logs": "broadcaster.cli.logs:command",
    "sms": "broadcaster.cli.sms:command",
    "subscribers": "broadcaster.cli.sms:subscribers",
    "smsc": "broadcaster.cli.sms:smsc",
    "plan": "broadcaster.cli.plan:plan_cmd",
    "schedule": "broadcaster.cli.plan:schedule_cmd",
    "run": "broadcaster.cli.daemon:run_cmd",
    "status": "broadcaster.cli.daemon:status_cmd",
    "reload": "broadcaster.cli.daemon:reload_cmd",
    "audio": "broadcaster.cli.audio:audio",
    "serve": "broadcaster.cli.audio:serve",
    "stations": "broadcaster.cli.audio:stations_cmd",
    "asrun": "broadcaster.cli.audio:asrun",
    "notice": "broadcaster.cli.audio:notice",
    "users": "broadcaster.cli.users:command",
}


class MainGroup(LazyGroup, DomainGroup):
    """The top-level group: lazily loaded commands, domain errors as one line."""


@click.group(
    cls=MainGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="broadcaster", prog_name="broadcaster")
@config_option
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Alert-level driven broadcasting: SMS blasts and loudspeaker playlists."""
    if config_path is not None:
        ctx.obj = App(config_path)
