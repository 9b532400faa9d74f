"""`broadcaster db upgrade|status`: the schema migrations an operator runs."""

from __future__ import annotations

import click

from broadcaster.cli.context import App, pass_app


@click.group("db")
def command() -> None:
    """Create or upgrade the database schema."""


@command.command("upgrade")
@pass_app
def upgrade_cmd(app: App) -> None:
    """Create the database if needed and apply every pending migration."""
    import structlog

    from broadcaster.store.db import upgrade

    engine = app.engine_unchecked(create=True)
    before, after = upgrade(engine)
    url = engine.url.render_as_string(hide_password=True)
    structlog.get_logger(__name__).info(
        "db.upgraded", url=url, before=sorted(before), after=sorted(after)
    )
    if before == after:
        click.echo(f"{url}: schema already current ({', '.join(sorted(after))})")
    else:
        click.echo(
            f"{url}: upgraded {', '.join(sorted(before)) or 'empty'} -> {', '.join(sorted(after))}"
        )


@command.command("status")
@pass_app
def status_cmd(app: App) -> None:
    """Show the schema revision of the database and the one this code expects."""
    from broadcaster.store.db import current_heads, expected_heads

    engine = app.engine_unchecked()
    current, expected = current_heads(engine), expected_heads()
    state = "current" if current == expected else "needs `broadcaster db upgrade`"
    click.echo(
        f"database {', '.join(sorted(current)) or 'empty'}; "
        f"code {', '.join(sorted(expected))}: {state}"
    )
    if current != expected:
        raise SystemExit(1)
