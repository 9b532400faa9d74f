"""Who is acting on the command line: the account mapped to the Unix login, or a token's.

On the server the actor is the account whose `--unix` login runs the
command. A second person on the same login (a demo, a test, a script acting
for a province system) acts through an API token instead: `--token-file F`
or `BROADCASTER_TOKEN_FILE=F`. `--by`, if given, must name that same account;
it never chooses one.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from functools import update_wrapper
from pathlib import Path
from typing import Any, TypeVar

import click

from broadcaster.accounts import Account, Forbidden, name_key
from broadcaster.cli.context import App

F = TypeVar("F", bound=Callable[..., Any])
MAX_TOKEN_FILE = 4096


def unix_login() -> str:
    """The login name of the user running this process (from the uid, not $USER)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def resolve_actor(app: App, by: str | None, token_file: Path | None) -> Account:
    """Find the acting account; refuse when there is none, it is disabled, or `--by`
    names someone else."""
    from broadcaster.store.accounts import account_for_token, account_for_unix_login

    if token_file is not None:
        account = account_for_token(app.engine, _read_token(token_file))
        source = f"the token in {token_file}"
    else:
        login = unix_login()
        found = account_for_unix_login(app.engine, login)
        if found is None:
            raise Forbidden(
                f"no account is mapped to the Unix login {login!r}; an admin adds one with "
                f"`broadcaster users add NAME --role ROLE --area CODE --unix {login}`, or act "
                "with a token: --token-file FILE (env BROADCASTER_TOKEN_FILE)"
            )
        account, source = found, f"Unix login {login!r}"
    if account.disabled:
        raise Forbidden(f"account {account.name!r} ({source}) is disabled")
    if by is not None and name_key(by) != name_key(account.name):
        raise Forbidden(
            f"--by {by!r} is not the acting account: {source} is {account.name!r} "
            "(--by may be left out)"
        )
    return account


def _read_token(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_TOKEN_FILE + 1)
    except OSError as exc:
        raise click.ClickException(f"--token-file {path}: {exc.strerror}") from None
    if len(raw) > MAX_TOKEN_FILE:
        raise click.ClickException(f"--token-file {path}: not a token (over {MAX_TOKEN_FILE} B)")
    return raw.decode("utf-8", "replace").strip()


def acting(func: F) -> F:
    """Give a command `--by` and `--token-file` and hand it the acting `Account` as
    its `actor` keyword; use below `pass_app`'s App argument."""
    return _with_actor(func, resolve_actor)


def acting_if_stored(func: F) -> F:
    """Like `acting`, for a command that also works on files alone: its `actor` is None
    when no database answers at this code's schema (nothing shared, nothing audited)."""

    def resolve(app: App, by: str | None, token_file: Path | None) -> Account | None:
        return None if app.engine_if_ready() is None else resolve_actor(app, by, token_file)

    return _with_actor(func, resolve)


def _with_actor(func: F, resolve: Callable[[App, str | None, Path | None], Account | None]) -> F:
    def wrapper(
        app: App, *args: Any, by: str | None, token_file: Path | None, **kwargs: Any
    ) -> Any:
        return func(app, *args, actor=resolve(app, by, token_file), **kwargs)

    update_wrapper(wrapper, func)
    wrapper = click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="BROADCASTER_TOKEN_FILE",
        help="Act as the account of this API token (env BROADCASTER_TOKEN_FILE) "
        "instead of the one mapped to your Unix login.",
    )(wrapper)
    wrapper = click.option(
        "--by",
        default=None,
        help="Optional check: the name of the account you act as (your Unix login's "
        "or the token's); a different name is refused.",
    )(wrapper)
    return wrapper  # type: ignore[return-value]
