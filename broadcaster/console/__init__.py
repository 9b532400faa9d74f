"""The web console at `/console/`: server-rendered pages over the operations layer."""

from broadcaster.console.app import make_console

__all__ = ["make_console"]
