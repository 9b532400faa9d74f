"""What every command shares: the `--config` option, lazy settings and database,
the clock, and rendering of domain errors as one clear line each."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, update_wrapper
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from broadcaster.areas import AreaRegistry
    from broadcaster.config import Settings
    from broadcaster.essentials import Essentials
    from broadcaster.levels import Ladder
    from broadcaster.operations import Context
    from broadcaster.store.read import Reader

F = TypeVar("F", bound=Callable[..., Any])
# Errors shown as one line, by module and class name: a class whose module was
# never imported cannot have been raised, so naming them keeps startup light.
DOMAIN_ERRORS = {
    "broadcaster.config": "ConfigError",
    "broadcaster.store.db": "SchemaOutdated",
    "broadcaster.schedule_files": "ScheduleError",
    "broadcaster.areas": "UnknownArea",
    "broadcaster.levels": "UnknownLevel",
    "broadcaster.accounts": "Refused",
    "broadcaster.operations.context": "NotFound",
}


@dataclass
class App:
    """The configured application as a command sees it; everything is loaded on first use."""

    config_path: Path
    console_logs: bool = False
    _engines: dict[bool, Engine] = field(default_factory=dict)

    @cached_property
    def settings(self) -> Settings:
        from broadcaster.config import load_settings
        from broadcaster.logging import configure_logging

        settings = load_settings(self.config_path)
        configure_logging(
            settings.log_file, settings.tz, settings.logging.level, console=self.console_logs
        )
        return settings

    @cached_property
    def essentials(self) -> Essentials:
        """What reading commands need: from the validated cache when it matches the
        config and environment exactly (no pydantic, no logging set up), else from
        `settings` (broadcaster/essentials.py)."""
        from broadcaster.essentials import Essentials, cached

        return cached(self.config_path) or Essentials.of(self.settings)

    def save_essentials(self) -> None:
        """Let later reading commands skip validation; only commands that write call this."""
        import structlog

        from broadcaster.essentials import save

        try:
            save(self.settings)
        except OSError as exc:  # reading commands then validate in full, as without a cache
            structlog.get_logger(__name__).warning("settings_cache.unwritable", error=str(exc))

    @property
    def registry(self) -> AreaRegistry:
        return self.essentials.registry

    @property
    def ladders(self) -> dict[str, Ladder]:
        return self.essentials.ladders

    def engine_unchecked(self, create: bool = False) -> Engine:
        """The engine without the schema check, for `db upgrade` (`create`) and `db status`.

        Without `create`, a SQLite database that does not exist yet is an error
        naming `broadcaster db upgrade`, so reading commands never leave an empty
        database (or its folder) behind."""
        from broadcaster.store.db import make_engine, require_database

        if False not in self._engines:
            url = self.settings.storage_url
            if not create:
                require_database(url)
            self._engines[False] = make_engine(url)
        return self._engines[False]

    @property
    def engine(self) -> Engine:
        if True not in self._engines:
            from broadcaster.store.db import check_schema

            engine = self.engine_unchecked()
            check_schema(engine)
            self._engines[True] = engine
        return self._engines[True]

    def engine_if_ready(self) -> Engine | None:
        """The engine if the database answers at this code's schema, else None: for
        commands that work on the files alone too (`schedule check` before `db upgrade`)
        and only read better figures from the database when there is one."""
        from sqlalchemy.exc import DBAPIError

        from broadcaster.store.db import SchemaOutdated

        try:
            return self.engine
        except (SchemaOutdated, DBAPIError):
            return None

    @contextmanager
    def reading(self) -> Iterator[Reader]:
        """The database for reading commands, checked against the schema.

        It goes through the driver itself, without SQLAlchemy (`store/read.py`);
        a database it cannot open that way (missing, in memory, another driver) or
        whose schema does not match goes through the engine, which says what to do."""
        from broadcaster.store.read import Reader, current_heads, expected_heads

        reader = Reader.open(self.essentials.storage_url)
        if reader is not None:
            try:
                if current_heads(reader) == expected_heads():
                    yield reader
                    return
            finally:
                reader.close()
        with Reader.of(self.engine) as pooled:
            yield pooled

    def now(self) -> datetime:
        return datetime.now(UTC)

    @cached_property
    def ops(self) -> Context:
        """The operations layer's context: every acting command goes through it."""
        from broadcaster.operations import Context

        return Context(self.settings, self.engine, clock=self.now)

    def local(self, moment: datetime | None) -> str | None:
        """A stored UTC time shown in the configured zone, ISO 8601 with offset."""
        if moment is None:
            return None
        return moment.astimezone(self.essentials.tz).isoformat(timespec="seconds")

    @staticmethod
    def echo_json(obj: Any) -> None:
        click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def config_option(func: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="BROADCASTER_CONFIG",
        default=None,
        help="Config file (default: ./config.toml, else /etc/broadcaster/config.toml; "
        "env BROADCASTER_CONFIG).",
    )(func)


def pass_app(func: F) -> F:
    """Give a command `--config` and hand it an `App` as its first argument."""

    def wrapper(ctx: click.Context, config_path: Path | None, *args: Any, **kwargs: Any) -> Any:
        from broadcaster.essentials import default_config_path

        parent = ctx.find_object(App)
        path = config_path or (parent.config_path if parent else None) or default_config_path()
        return ctx.invoke(func, App(path), *args, **kwargs)

    update_wrapper(wrapper, func)
    return config_option(click.pass_context(wrapper))  # type: ignore[return-value]


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Table for people, JSON for scripts.",
)


class DomainGroup(click.Group):
    """A click group that turns domain errors into one clean error line and exit 1,
    and ends quietly when the reader of its output has gone (`… | head`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _leave_quietly()
        except Exception as exc:
            if not isinstance(exc, (ValueError, OSError, *_loaded_domain_errors())):
                raise
            raise click.ClickException(str(exc)) from exc


def _loaded_domain_errors() -> tuple[type[Exception], ...]:
    """The domain error classes of the modules this run has imported."""
    return tuple(
        getattr(sys.modules[module], name)
        for module, name in DOMAIN_ERRORS.items()
        if module in sys.modules
    )


def _leave_quietly() -> NoReturn:
    """Stop writing to a closed pipe and exit as a shell reports SIGPIPE (128 + 13)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    raise SystemExit(141)
