"""`broadcaster sms …`, `broadcaster subscribers import` and `broadcaster smsc`."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from broadcaster.accounts import Account
from broadcaster.cli.actor import acting
from broadcaster.cli.context import App, format_option, pass_app
from broadcaster.sms.states import MessageState, Priority

if TYPE_CHECKING:
    from broadcaster.sms.blast import Preview
    from broadcaster.sms.numbers import CarrierRouter


def router_for(app: App) -> CarrierRouter:
    """Build the carrier router from the config's prefixes and ported-number overrides."""
    from broadcaster.sms.carriers import router_from_settings

    return router_from_settings(app.settings)


@click.group("sms")
def command() -> None:
    """Draft, approve, cancel, send and follow SMS blasts."""


@command.command("draft")
@click.option("--area", "areas", multiple=True, required=True, help="Area code (repeatable).")
@click.option("--text", "body", required=True, help="Message text.")
@click.option("--unaccent", is_flag=True, help="Strip Vietnamese diacritics (GSM: fewer parts).")
@click.option(
    "--priority",
    type=click.Choice([p.value for p in Priority]),
    default="routine",
    show_default=True,
)
@click.option("--exercise", is_flag=True, help="Send only to the configured test numbers.")
@format_option
@pass_app
@acting
def draft_cmd(
    app: App,
    areas: tuple[str, ...],
    body: str,
    unaccent: bool,
    priority: str,
    exercise: bool,
    fmt: str,
    actor: Account,
) -> None:
    """Draft a blast as your account and show what it will cost; nothing is sent before
    a second account approves it."""
    from broadcaster import operations as ops

    preview = ops.draft_blast(
        app.ops,
        actor,
        areas=areas,
        text=body,
        unaccented=unaccent,
        priority=Priority(priority),
        exercise=exercise,
    )
    _show_draft(app, preview, unaccent, fmt)


def _show_draft(app: App, preview: Preview, unaccent: bool, fmt: str) -> None:
    if fmt == "json":
        app.echo_json(preview.as_json())
        return
    click.echo(f"blast {preview.id} drafted [{_label(preview.exercise, preview.corrects)}]")
    click.echo(
        f"  recipients {preview.recipients}  encoding {preview.encoding}  "
        f"parts/message {preview.parts}  total SMS {preview.total_sms}"
    )
    if preview.ucs2_chars:
        hint = "" if unaccent else " (--unaccent folds diacritics and typographic punctuation)"
        click.echo(f"  UCS-2 because of: {' '.join(preview.ucs2_chars)}{hint}")
    for carrier, n in preview.per_carrier.items():
        click.echo(f"  {carrier:<14} {n}")
    click.echo(f"a second account approves it with: broadcaster sms approve {preview.id}")


def _label(exercise: bool, corrects: int | None) -> str:
    """Say how a blast reaches people: exercise or live, and whether it corrects another."""
    label = "EXERCISE — test numbers only" if exercise else "LIVE"
    return label if corrects is None else f"{label}, CORRECTION of blast {corrects}"


@command.command("correct")
@click.argument("blast_id", type=int)
@click.option("--text", "body", required=True, help="The corrected text.")
@click.option("--unaccent", is_flag=True, help="Strip Vietnamese diacritics (GSM: fewer parts).")
@format_option
@pass_app
@acting
def correct_cmd(
    app: App, blast_id: int, body: str, unaccent: bool, fmt: str, actor: Account
) -> None:
    """Draft a correction of a blast as your account, to exactly those it may have
    reached; a second account sends it with `sms approve`."""
    from broadcaster import operations as ops

    preview = ops.correct_blast(app.ops, actor, blast_id, text=body, unaccented=unaccent)
    _show_draft(app, preview, unaccent, fmt)


@command.command("approve")
@click.argument("blast_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
@acting
def approve_cmd(app: App, blast_id: int, yes: bool, actor: Account) -> None:
    """Approve a draft as a second account: its recipients are queued for the senders."""
    from broadcaster import operations as ops

    preview = ops.blast_preview(app.ops, actor, blast_id)
    label = _label(preview.exercise, preview.corrects)
    if not yes:
        click.confirm(
            f"{label}: send {preview.total_sms} SMS to {preview.recipients} recipients?", abort=True
        )
    queued = ops.approve_blast(app.ops, actor, blast_id)
    click.echo(f"blast {blast_id} approved by {actor.name} [{label}]: {queued} messages queued")


@command.command("cancel")
@click.argument("blast_id", type=int)
@pass_app
@acting
def cancel_cmd(app: App, blast_id: int, actor: Account) -> None:
    """Cancel a blast at once; what is not yet submitted is not sent."""
    from broadcaster import operations as ops

    n = ops.cancel_blast(app.ops, actor, blast_id)
    click.echo(
        f"blast {blast_id} cancelled by {actor.name}: {n} queued messages will not be sent; "
        "senders stop what they hold before their next submit"
    )


@command.command("status")
@click.argument("blast_id", type=int)
@click.option("--watch", is_flag=True, help="Follow progress until every message is final.")
@format_option
@pass_app
def status_cmd(app: App, blast_id: int, watch: bool, fmt: str) -> None:
    """Count a blast's messages by state, overall and per carrier."""
    from broadcaster.store.read import blast_status

    with app.reading() as db:
        report = blast_status(db, blast_id)
    if watch:
        report = _watch(app, blast_id, report)
    if fmt == "json":
        app.echo_json(report)
        return
    label = " [EXERCISE]" if report["exercise"] else ""
    if report["corrects"] is not None:
        label += f" [CORRECTION of blast {report['corrects']}]"
    partly = report["partly_sent"]
    partly_note = f"  (of the cancelled, {partly} partly sent)" if partly else ""
    click.echo(f"blast {blast_id} {report['state']}{label}: {_counts(report)}{partly_note}")
    per_carrier = cast(dict[str, dict[str, object]], report["per_carrier"])
    for carrier, counts in per_carrier.items():
        click.echo(f"  {carrier:<14} {_counts(counts)}")


def _counts(counts: dict[str, object]) -> str:
    keys = ("total", *MessageState)
    return "  ".join(f"{k} {counts[k]}" for k in keys)


def _watch(app: App, blast_id: int, report: dict[str, object]) -> dict[str, object]:
    from broadcaster.store.read import blast_status

    total = int(report["total"])  # type: ignore[call-overload]

    def final(r: dict[str, object]) -> int:
        return sum(int(r[k]) for k in ("delivered", "failed", "expired", "cancelled"))  # type: ignore[call-overload]

    with click.progressbar(length=total, label=f"blast {blast_id}", file=sys.stderr) as bar:
        done = final(report)
        bar.update(done)
        while done < total:
            time.sleep(1)
            with app.reading() as db:
                report = blast_status(db, blast_id)
            now_done = final(report)
            bar.update(now_done - done)
            done = now_done
    return report


@command.command("send")
@click.option("--carrier", "carriers", multiple=True, help="Only these carriers.")
@click.option(
    "--receipt-wait",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for outstanding receipts once everything is submitted.",
)
@pass_app
def send_cmd(app: App, carriers: tuple[str, ...], receipt_wait: float) -> None:
    """Run the senders until every queued message is submitted and receipted.

    The run is a node of its own (`<node>/sms-send`, role `sender`): daemons
    sending on the same carriers count it, so the carriers' caps hold summed.
    """
    from broadcaster.beacon import NodeBeacon
    from broadcaster.nodes import NodeRole, sender_name
    from broadcaster.sms.sender import run_senders
    from broadcaster.store.nodes import NodeNameTaken

    settings = app.settings
    beacon = NodeBeacon(
        app.engine,
        sender_name(settings.node_name),
        None,
        [c for c in settings.carriers if not carriers or c in carriers],
        lambda: NodeRole.SENDER,
        app.now,
    )
    try:
        beacon.start()
    except NodeNameTaken as exc:
        raise click.ClickException(str(exc)) from None
    stop = threading.Event()
    try:
        run_senders(
            settings,
            app.engine,
            stop,
            drain=True,
            receipt_wait=receipt_wait,
            carriers=list(carriers) or None,
        )
    except KeyboardInterrupt:
        stop.set()
    finally:
        beacon.stop()
    click.echo("senders finished")


@click.group("subscribers")
def subscribers() -> None:
    """Manage the subscriber list SMS blasts go to."""


@subscribers.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def import_cmd(app: App, path: Path) -> None:
    """Import subscribers from CSV (msisdn, commune[, language, name]); idempotent."""
    from broadcaster.sms.subscribers import import_csv

    communes = {a.code for a in app.registry.all() if a.kind == "commune"}
    total = sum(1 for _ in path.open(encoding="utf-8-sig")) - 1
    show = sys.stderr.isatty()
    with click.progressbar(
        length=max(total, 0), label="importing", file=sys.stderr, hidden=not show
    ) as bar:
        seen = [0]

        def progress(read: int) -> None:
            bar.update(read - seen[0])
            seen[0] = read

        report = import_csv(app.engine, path, router_for(app), communes, progress)
    for line, reason in report.errors:
        click.echo(f"{path}:{line}: {reason}", err=True)
    click.echo(
        f"{report.imported} subscribers imported, {len(report.errors)} rows rejected "
        f"of {report.read}"
    )


@click.command("smsc")
@click.option(
    "--port",
    "ports",
    type=int,
    multiple=True,
    help="Port(s) to listen on (default: every carrier port in the config).",
)
@click.option("--throttle-every", type=int, default=0, help="Answer every Nth submit 0x58.")
@click.option("--delay-ms", type=float, default=0.0, help="Delay each response.")
@click.option("--drop-after", type=int, default=0, help="Cut links every N submits.")
@click.option("--reject-every", type=int, default=0, help="Refuse every Nth submit.")
@click.option(
    "--reject-status", default="0x0B", show_default=True, help="Status of refused submits (hex)."
)
@click.option("--nack-every", type=int, default=0, help="Answer every Nth submit generic_nack.")
@click.option(
    "--malformed-deliver",
    type=click.Choice(["once", "every_bind"]),
    default=None,
    help="Send a malformed deliver_sm after the first bind, or after every bind.",
)
@click.option(
    "--bad-length", type=int, default=0, help="After the first bind, a header of this length."
)
@click.option(
    "--bad-length-binds", type=int, default=1, help="Send --bad-length after the first N binds."
)
@click.option("--truncate-once", is_flag=True, help="After the first bind, half a PDU, then close.")
@click.option(
    "--short-bind-resp", type=int, default=0, help="Answer the first N binds with 4 bytes."
)
@click.option("--unbind-after", type=int, default=0, help="Unbind once after N submits.")
@click.option(
    "--receipts/--no-receipts",
    default=True,
    show_default=True,
    help="Send delivery receipts when asked.",
)
@pass_app
def smsc(
    app: App,
    ports: tuple[int, ...],
    throttle_every: int,
    delay_ms: float,
    receipts: bool,
    reject_every: int,
    reject_status: str,
    **wire: object,
) -> None:
    """Run a local test SMSC (smpp34's server) on 127.0.0.1 with receipts; Ctrl-C stops."""
    try:
        from smpp34 import SmppError
    except ImportError:
        raise click.ClickException(
            "the test SMSC needs the smsc extra: pip install 'broadcaster[smsc]' "
            "(scripts/setup installs it)"
        ) from None

    from broadcaster.testing.faults import WireFaults
    from broadcaster.testing.smsc import SmscPolicy, TestSmsc, run_forever

    chosen = ports or tuple(sorted({c.port for c in app.settings.carriers.values()}))
    try:
        status = int(reject_status, 16)
    except ValueError:
        raise click.BadParameter(
            f"{reject_status!r} is not hex", param_hint="--reject-status"
        ) from None
    wire["malformed_deliver"] = wire["malformed_deliver"] or ""
    policy = SmscPolicy(
        throttle_every=throttle_every,
        delay=delay_ms / 1000,
        receipts=receipts,
        reject_every=reject_every,
        reject_status=status,
        wire=WireFaults(**wire),  # type: ignore[arg-type]
    )
    click.echo(f"test SMSC on 127.0.0.1:{', '.join(map(str, chosen))} (Ctrl-C stops)", err=True)
    try:
        run_forever([TestSmsc(port, policy, record=False) for port in chosen])
    except SmppError as exc:
        raise click.ClickException(f"test SMSC cannot listen: {exc}") from None
