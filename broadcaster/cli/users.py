"""`broadcaster users add|list|disable|password|token`: accounts, managed by admins.

The very first account is made without one (no admin exists yet): it must be
an admin, and is usually mapped to the login that runs the command
(`--unix "$(whoami)"`). From then on an admin account acts, and only over
its own areas.
"""

from __future__ import annotations

from pathlib import Path

import click

from broadcaster.accounts import Account, Role
from broadcaster.cli.actor import acting, resolve_actor
from broadcaster.cli.context import App, format_option, pass_app


@click.group("users")
def command() -> None:
    """Accounts of operators, approvers and admins."""


@command.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option(
    "--area",
    "areas",
    multiple=True,
    required=True,
    help="Area code the account acts on, with the areas below it (repeatable).",
)
@click.option("--unix", "unix_login", help="Unix login that acts as this account on the CLI.")
@click.option("--by", default=None, help="Optional check: the admin account you act as.")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BROADCASTER_TOKEN_FILE",
    help="Act as this API token's account.",
)
@pass_app
def add_cmd(
    app: App,
    name: str,
    role: str,
    areas: tuple[str, ...],
    unix_login: str | None,
    by: str | None,
    token_file: Path | None,
) -> None:
    """Add an account; the first one (while no admin exists) must be an admin."""
    from broadcaster.operations import add_account
    from broadcaster.store.accounts import admin_exists

    actor = resolve_actor(app, by, token_file) if admin_exists(app.engine) else None
    made = add_account(
        app.ops, actor, name=name, role=Role(role), areas=areas, unix_login=unix_login
    )
    click.echo(
        f"account {made.id} {made.name!r}: {made.role.value} on "
        f"{', '.join(sorted(made.areas))}"
        + (f", Unix login {made.unix_login}" if made.unix_login else "")
        + (" (first admin)" if actor is None else "")
    )


@command.command("list")
@format_option
@pass_app
def list_cmd(app: App, fmt: str) -> None:
    """List accounts (never their secrets)."""
    from broadcaster.store.accounts import list_accounts

    accounts = list_accounts(app.engine)
    if fmt == "json":
        app.echo_json([a.as_json() for a in accounts])
        return
    for a in accounts:
        flags = " ".join(f for f, on in (("disabled", a.disabled), ("totp", a.has_totp)) if on)
        click.echo(
            f"{a.id:>4}  {a.name:<24} {a.role.value:<9} {' '.join(sorted(a.areas)):<16}"
            f" {a.unix_login or '-':<12} {flags}"
        )


@command.command("disable")
@click.argument("account")
@pass_app
@acting
def disable_cmd(app: App, account: str, actor: Account) -> None:
    """Disable ACCOUNT (name or id): its login, tokens and sessions stop working."""
    from broadcaster.operations import disable_account

    done = disable_account(app.ops, actor, account)
    click.echo(f"account {done.id} {done.name!r} disabled")


@command.command("password")
@click.argument("account")
@click.option(
    "--totp/--no-totp",
    default=None,
    help="Make a new TOTP second factor (prints its otpauth:// URI once), or drop it.",
)
@click.password_option(prompt="New password", help="The new password (asked when not given).")
@pass_app
@acting
def password_cmd(app: App, account: str, totp: bool | None, password: str, actor: Account) -> None:
    """Set ACCOUNT's password (one's own, or as an admin), optionally with TOTP."""
    from broadcaster.operations import set_password

    uri = set_password(app.ops, actor, account, password, totp=totp)
    click.echo("password set")
    if uri:
        click.echo(f"TOTP (add to an authenticator app now; shown once): {uri}")


@command.command("token")
@click.argument("account")
@click.option("--label", default="", help="What the token is for (kept with it).")
@pass_app
@acting
def token_cmd(app: App, account: str, label: str, actor: Account) -> None:
    """Print a new API bearer token for ACCOUNT, once; only its hash is stored."""
    from broadcaster.operations import issue_token

    click.echo(issue_token(app.ops, actor, account, label=label))
