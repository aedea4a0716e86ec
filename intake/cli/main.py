"""The `intake` command (click for the commands, rich for the tables)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from intake.cli import views
from intake.cli.logs import configure_logging
from intake.conduct.deadlines import run_deadlines
from intake.conduct.roster import upcoming_shifts
from intake.errors import IntakeError, SettingsError
from intake.runtime.cycle import CycleStats, poll_once, running
from intake.settings.loading import OUTSIDE_CONTACT_MISSING, load_settings, require_secrets
from intake.settings.schema import Settings
from intake.transport.fetch import Backfill

T = TypeVar("T")
console = Console()


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj["settings_loader"]()
    return settings


def _with_database(
    ctx: click.Context, work: Callable[[Settings], Awaitable[T]], *, connects: bool = False
) -> T:
    """Run `work` with the database open. Only commands that connect to the mail servers need
    the secrets and write the team table; the listings read and need neither."""
    settings = _settings(ctx)
    if connects:
        require_secrets(settings)

    async def go() -> T:
        async with running(settings, sync=connects):
            return await work(settings)

    return _run(go())


def _print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=escape(title), title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:  # cells hold text from inbound mail: never rich markup
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)


@click.group()
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Settings file (default: $INTAKE_CONFIG, else ./settings.toml).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, verbose: bool) -> None:
    """Intake: email intake and confidential case handling for Code of Conduct teams."""
    configure_logging(verbose)
    ctx.ensure_object(dict)
    ctx.obj["settings_loader"] = lambda: load_settings(config)


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the daemon: fetch, process and deliver on a schedule until SIGTERM or SIGINT."""
    from intake.runtime.daemon import Daemon

    settings = _settings(ctx)
    require_secrets(settings)
    _run(Daemon(settings).serve())


@cli.command()
@click.option("--once", is_flag=True, default=True, help="One cycle, then exit (the default).")
@click.pass_context
def poll(ctx: click.Context, once: bool) -> None:
    """Run the deadlines, then one fetch, process and deliver cycle, and exit (for cron)."""

    async def deadlines_then_cycle(settings: Settings) -> tuple[list[str], CycleStats]:
        reminders = await run_deadlines(settings, datetime.now(UTC))
        return reminders, await poll_once(settings)

    reminders, stats = _with_database(ctx, deadlines_then_cycle, connects=True)
    click.echo(
        f"fetched {stats.fetch.stored} new, processed {stats.process.processed}"
        f" ({stats.process.failed} failed), sent {stats.deliver.sent}"
        f" ({stats.deliver.deferred} deferred, {stats.deliver.failed} failed);"
        f" {len(reminders)} deadline reminders"
    )


@cli.command()
@click.option(
    "--no-replies/--with-replies",
    "quiet",
    default=None,
    help="Import the waiting mail as cases without mailing anyone, or acknowledge it all.",
)
@click.pass_context
def backfill(ctx: click.Context, quiet: bool | None) -> None:
    """Import mail already waiting in a mailbox Intake meets for the first time."""
    if quiet is None:
        raise IntakeError("backfill: choose --no-replies or --with-replies")
    plan = Backfill(first_run_limit=None, quiet=quiet)
    stats = _with_database(ctx, lambda s: poll_once(s, backfill=plan), connects=True)
    replies = "no one was mailed" if quiet else f"sent {stats.deliver.sent}"
    click.echo(
        f"imported {stats.fetch.stored}, processed {stats.process.processed}"
        f" ({stats.process.failed} failed); {replies}"
    )


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the settings, then try the mailbox, the outbound transport and the database."""
    from intake.runtime.checks import run_checks

    settings = _settings(ctx)
    require_secrets(settings)
    click.echo(f"ok       settings   {settings.source_file}")
    if settings.organisation.outside_contact is None:
        click.echo(f"warning  settings   {OUTSIDE_CONTACT_MISSING}")
    results = _run(run_checks(settings))
    for name, target, error in results:
        status = "ok" if error is None else "FAILED"
        click.echo(f"{status:<8} {name:<10} {target}{'' if error is None else ': ' + error}")
    if any(error is not None for _, _, error in results):
        sys.exit(1)


@cli.command()
@click.option("--at", "at", default=None, help="An instant (ISO 8601); default: now.")
@click.option("--periods", default=4, show_default=True, help="How many periods to show.")
@click.pass_context
def roster(ctx: click.Context, at: str | None, periods: int) -> None:
    """Who is on duty now (or at --at), and for the next periods."""
    settings = _settings(ctx)
    instant = _instant(at, settings)
    shifts = upcoming_shifts(settings, instant, max(periods, 1))
    _table(
        f"On duty at {instant.isoformat(timespec='minutes')}",
        ["from", "until", "on duty", "backup"],
        [
            [
                shift.starts.strftime("%Y-%m-%d %H:%M %Z"),
                shift.ends.strftime("%Y-%m-%d %H:%M %Z"),
                f"{shift.member.name} <{shift.member.email}>",
                f"{shift.backup.name} <{shift.backup.email}>",
            ]
            for shift in shifts
        ],
    )


def _instant(text: str | None, settings: Settings) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise IntakeError(f"--at: {text!r} is not an ISO 8601 time") from None
    if instant.tzinfo is None:
        from zoneinfo import ZoneInfo

        instant = instant.replace(tzinfo=ZoneInfo(settings.roster.timezone))
    return instant


_ALL = click.option("--all", "show_all", is_flag=True, help="Everything, not only the most recent.")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@cli.command()
@_ALL
@_JSON
@click.pass_context
def tickets(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """Cases, most recent first: reference, status, kind, assignee, age."""
    rows = _with_database(ctx, lambda _: views.tickets(None if show_all else views.RECENT))
    if as_json:
        _print_json(rows)
        return
    _table(
        "Tickets",
        ["ref", "status", "kind", "assignee", "age"],
        [[r["ref"], r["status"], r["kind"], r["assignee"] or "-", r["age"]] for r in rows],
    )


@cli.command()
@click.argument("ref")
@_JSON
@click.pass_context
def ticket(ctx: click.Context, ref: str, as_json: bool) -> None:
    """One case and its whole thread."""
    case = _with_database(ctx, lambda _: views.ticket(ref))
    if as_json:
        _print_json(case)
        return
    console.print(
        f"[bold]{case['ref']}[/bold]  {case['kind']}  status: {case['status']}"
        f"  assignee: {case['assignee'] or '-'}"
    )
    console.print(f"reporter: {case['reporter']}   opened: {case['created_at']}", markup=False)
    urgent = "URGENT. " if case["urgent"] else ""
    console.print(f"{urgent}kind: {case['kind']} ({case['kind_reason']})", markup=False)
    if case["resolution"]:
        console.print(
            f"resolution: {case['resolution']} by {case['resolved_by']} at {case['resolved_at']}:"
            f" {case['resolution_reason'] or '(no reason given)'}"
            + (f"; ends {case['resolution_ends_at']}" if case["resolution_ends_at"] else ""),
            markup=False,
        )
    if case["refers_to"]:
        console.print(f"points at: {case['refers_to']}", markup=False)
    for party in case["parties"]:
        excluded = f"  EXCLUDED: {party['excluded_reason']}" if party["excluded"] else ""
        console.print(f"party: {party['role']} {party['email']}{excluded}", markup=False)
    for event in case["events"]:
        to = f" -> {', '.join(event['to'])} [{event['delivery']}]" if event["to"] else ""
        console.rule(
            escape(
                f"{event['created_at']}  {event['kind']}  {event['author']}{to}"
                f"  ({event['audience']})"
            )
        )
        console.print(event["body"], markup=False, highlight=False)
    if case["attachments"]:
        console.rule("attachments")
        for item in case["attachments"]:
            size = f"{item['size']} bytes"
            console.print(
                f"{item['filename']}  {item['content_type']}  {size}  {item['sha256']}",
                markup=False,
            )


@cli.group(invoke_without_command=True)
@_ALL
@_JSON
@click.option("--failed", is_flag=True, help="Only messages parked as failed.")
@click.pass_context
def inbound(ctx: click.Context, show_all: bool, as_json: bool, failed: bool) -> None:
    """Inbound messages, most recent first, with their outcomes (see also: show, retry)."""
    if ctx.invoked_subcommand is not None:
        return
    limit = None if show_all else views.RECENT
    rows = _with_database(ctx, lambda _: views.inbound(limit, failed_only=failed))
    if as_json:
        _print_json(rows)
        return
    _table(
        "Inbound",
        ["id", "received", "state", "outcome", "ticket", "reason"],
        [
            [
                str(r["id"]),
                r["received_at"],
                r["state"],
                r["outcome"] or "-",
                r["ticket"] or "-",
                r["reason"],
            ]
            for r in rows
        ],
    )


@inbound.command("show")
@click.argument("inbound_id", type=int)
@_JSON
@click.pass_context
def inbound_show(ctx: click.Context, inbound_id: int, as_json: bool) -> None:
    """One stored message: state, error, size and headers."""
    detail = _with_database(ctx, lambda _: views.inbound_detail(inbound_id))
    if as_json:
        _print_json(detail)
        return
    for key, value in detail.items():
        if key != "headers":
            console.print(f"{key:<12} {value if value is not None else '-'}", markup=False)
    console.rule("headers")
    for name, value in detail["headers"]:
        console.print(f"{name}: {value}", markup=False, highlight=False)


@inbound.command("retry")
@click.argument("inbound_ids", type=int, nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Every message parked as failed.")
@click.pass_context
def inbound_retry(ctx: click.Context, inbound_ids: tuple[int, ...], retry_all: bool) -> None:
    """Put parked messages back in the queue; the next cycle processes them."""
    if not inbound_ids and not retry_all:
        raise IntakeError("inbound retry: name message ids, or --all")
    ids = None if retry_all else list(inbound_ids)
    count = _with_database(ctx, lambda _: views.retry_inbound(ids))
    click.echo(f"{count} message(s) back in the queue")


@cli.command()
@_ALL
@_JSON
@click.pass_context
def outbox(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """Outbound mail, most recent first, with its delivery state."""
    rows = _with_database(ctx, lambda _: views.outbox(None if show_all else views.RECENT))
    if as_json:
        _print_json(rows)
        return
    _table(
        "Outbox",
        ["id", "kind", "ticket", "to", "state", "attempts", "last error"],
        [
            [
                str(r["id"]),
                r["kind"],
                r["ticket"] or "-",
                ", ".join(r["recipients"]),
                r["state"],
                str(r["attempts"]),
                r["last_error"] or "",
            ]
            for r in rows
        ],
    )


@cli.command()
@click.option(
    "--from",
    "first_day",
    metavar="DATE",
    default=None,
    help="Cases created on or after this day (YYYY-MM-DD, UTC); default: the first case.",
)
@click.option(
    "--to",
    "last_day",
    metavar="DATE",
    default=None,
    help="Cases created up to the end of this day (YYYY-MM-DD, UTC); default: the last case.",
)
@_JSON
@click.pass_context
def stats(ctx: click.Context, first_day: str | None, last_day: str | None, as_json: bool) -> None:
    """Anonymous counts and median response times, for a transparency report."""
    from intake.conduct.stats import case_stats, text_report, window

    start, end = window(first_day, last_day)
    report = _with_database(ctx, lambda settings: case_stats(settings, start, end))
    if as_json:
        _print_json(report)
        return
    text = text_report(report)
    console.print(text.heading, markup=False)
    for title, columns, rows in text.tables:
        _table(title, columns, rows)
    console.print(text.note, markup=False, highlight=False)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SettingsError as exc:
        click.echo(f"intake: {exc}", err=True)
        sys.exit(2)
    except IntakeError as exc:
        click.echo(f"intake: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # one line for the operator; the traceback only with -v
        click.echo(f"intake: {type(exc).__name__}: {exc}", err=True)
        logging.getLogger("intake").debug("details", exc_info=True)
        sys.exit(1)
