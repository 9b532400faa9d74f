"""broadcaster: alert-level driven bulletins, SMS blasts and station playlists.

`broadcaster.__version__` comes from the installed package's metadata (pyproject's
`version`), read on first use so that importing the package stays cheap.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("broadcaster")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'broadcaster' has no attribute {name!r}")
