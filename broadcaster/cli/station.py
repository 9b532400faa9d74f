"""`broadcaster station run`: the agent at the commune.

This module imports only click: the agent (httpx and the standard library)
is imported when the command runs, and nothing of the centre ever is, so
the command starts fast on a small machine.
"""

from __future__ import annotations

import signal
from pathlib import Path

import click


@click.group("station")
def command() -> None:
    """The station agent that runs beside a commune's loudspeakers."""


@command.command("run")
@click.option(
    "--centre",
    required=True,
    envvar="BROADCASTER_CENTRE",
    help="The centre's public URL, e.g. http://centre.example:8080.",
)
@click.option(
    "--station",
    required=True,
    envvar="BROADCASTER_STATION",
    help="This station's code (see `broadcaster stations`).",
)
@click.option(
    "--token",
    required=True,
    envvar="BROADCASTER_TOKEN",
    help="This station's token (see `broadcaster stations`; env BROADCASTER_TOKEN).",
)
@click.option(
    "--cache",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for days, audio and queued reports.",
)
@click.option(
    "--mpv-option",
    "mpv_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to mpv, e.g. audio-device=alsa/hw:1 (repeat for several).",
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds between heartbeats.",
)
@click.option(
    "--refresh",
    type=click.FloatRange(1, 3600),
    default=60.0,
    show_default=True,
    help="Seconds between full refreshes of both days and their audio.",
)
def run(
    centre: str,
    station: str,
    token: str,
    cache: Path,
    mpv_options: tuple[str, ...],
    heartbeat: float,
    refresh: float,
) -> None:
    """Keep two days of audio, air each slot on time through mpv, report what aired."""
    from broadcaster.station.agent import Agent, AgentConfig, parse_mpv_options

    if not centre.startswith(("http://", "https://")):
        raise click.BadParameter("must start with http:// or https://", param_hint="--centre")
    try:
        options = parse_mpv_options(mpv_options)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--mpv-option") from None
    agent = Agent(
        AgentConfig(centre, station, token, cache, options, heartbeat, refresh, version=_version())
    )
    signal.signal(signal.SIGTERM, lambda *_: agent.shutdown())
    signal.signal(signal.SIGINT, lambda *_: agent.shutdown())
    agent.run()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("broadcaster")
    except PackageNotFoundError:
        return "unknown"
