"""The commands that read and change records: cases, inbound and outbound mail, figures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import click
from rich.markup import escape

from intake.cli import views
from intake.cli.common import (
    ALL_OPTION,
    JSON_OPTION,
    WHY_OPTION,
    console,
    operator,
    print_json,
    print_table,
    with_database,
)
from intake.conduct.audit import record, record_reads
from intake.conduct.case_record import case_record, find_case
from intake.conduct.digest import Digest, digests, run_digests
from intake.errors import IntakeError
from intake.mail.sanitize import short_duration
from intake.settings.schema import Settings
from intake.store.models import AuditAction, Ticket


@click.command()
@ALL_OPTION
@JSON_OPTION
@click.pass_context
def tickets(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """Cases, most recent first: reference, status, kind, assignee, age."""
    limit = None if show_all else views.RECENT

    async def listed(_: Settings) -> list[dict[str, Any]]:
        rows = await views.tickets(limit)
        if as_json:  # the JSON holds each case's reporter and subject: a read of each
            await _listed_cases(rows, "ref", "its reporter and subject (tickets --json)")
        return rows

    rows = with_database(ctx, listed)
    if as_json:
        print_json(rows)
        return
    print_table(
        "Tickets",
        ["ref", "status", "kind", "assignee", "age"],
        [[r["ref"], r["status"], r["kind"], r["assignee"] or "-", r["age"]] for r in rows],
    )


async def _listed_cases(rows: list[dict[str, Any]], key: str, what: str) -> None:
    """A listing that shows something of each case's people (addresses, subjects, reasons) is
    a read of each case it lists, for the audit trail."""
    refs = {row[key] for row in rows if row[key]}
    if refs:
        await record_reads(await Ticket.filter(ref__in=refs), operator(), what, "")


@click.command()
@click.argument("ref")
@JSON_OPTION
@WHY_OPTION
@click.pass_context
def ticket(ctx: click.Context, ref: str, as_json: bool, why: str) -> None:
    """One case and its whole thread (each read is recorded in the case's audit trail)."""

    async def read(_: Settings) -> dict[str, Any]:
        row = await find_case(ref)
        case = await case_record(row)
        what = "the case and its thread" + (" (--json)" if as_json else "")
        await record(row, operator(), AuditAction.READ, what, why)
        return case

    case = with_database(ctx, read)
    if as_json:
        print_json(case)
        return
    console.print(
        f"[bold]{case['ref']}[/bold]  {case['kind']}  status: {case['status']}"
        f"  assignee: {case['assignee'] or '-'}"
    )
    console.print(f"reporter: {case['reporter']}   opened: {case['created_at']}", markup=False)
    console.print(f"subject: {case['subject']}", markup=False, highlight=False)
    if case["purged_at"]:
        console.print(f"content purged: {case['purged_at']}", markup=False)
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


@click.group(invoke_without_command=True)
@ALL_OPTION
@JSON_OPTION
@click.option("--failed", is_flag=True, help="Only messages parked as failed.")
@click.pass_context
def inbound(ctx: click.Context, show_all: bool, as_json: bool, failed: bool) -> None:
    """Inbound messages, most recent first, with their outcomes (see also: show, retry)."""
    if ctx.invoked_subcommand is not None:
        return
    limit = None if show_all else views.RECENT

    async def listed(_: Settings) -> list[dict[str, Any]]:
        rows = await views.inbound(limit, failed_only=failed)
        await _listed_cases(rows, "ticket", "the outcomes of its mail (intake inbound)")
        return rows

    rows = with_database(ctx, listed)
    if as_json:
        print_json(rows)
        return
    print_table(
        "Inbound",
        ["id", "received", "state", "outcome", "ticket", "acknowledged", "reason"],
        [
            [
                str(r["id"]),
                r["received_at"],
                r["state"],
                r["outcome"] or "-",
                r["ticket"] or "-",
                _after_arrival(r["acknowledged_after_seconds"]),
                r["reason"],
            ]
            for r in rows
        ],
    )


def _after_arrival(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{short_duration(timedelta(seconds=seconds))} after arrival"


@inbound.command("show")
@click.argument("inbound_id", type=int)
@JSON_OPTION
@WHY_OPTION
@click.pass_context
def inbound_show(ctx: click.Context, inbound_id: int, as_json: bool, why: str) -> None:
    """One stored message: state, error, size and headers."""
    what = f"the headers of inbound message {inbound_id}"
    _show(ctx, partial(views.inbound_detail, inbound_id), as_json, what, why)


@inbound.command("retry")
@click.argument("inbound_ids", type=int, nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Every message parked as failed.")
@click.pass_context
def inbound_retry(ctx: click.Context, inbound_ids: tuple[int, ...], retry_all: bool) -> None:
    """Put parked messages back in the queue; the next cycle processes them."""
    if not inbound_ids and not retry_all:
        raise IntakeError("inbound retry: name message ids, or --all")
    ids = None if retry_all else list(inbound_ids)
    count = with_database(ctx, lambda _: views.retry_inbound(ids))
    click.echo(f"{count} message(s) back in the queue")


@click.group(invoke_without_command=True)
@ALL_OPTION
@JSON_OPTION
@click.pass_context
def outbox(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """Outbound mail, most recent first, with its delivery state (see also: show, retry,
    cancel)."""
    if ctx.invoked_subcommand is not None:
        return

    async def listed(_: Settings) -> list[dict[str, Any]]:
        rows = await views.outbox(None if show_all else views.RECENT)
        await _listed_cases(rows, "ticket", "the recipients of its emails (intake outbox)")
        return rows

    rows = with_database(ctx, listed)
    if as_json:
        print_json(rows)
        return
    print_table(
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


@outbox.command("show")
@click.argument("outbound_id", type=int)
@JSON_OPTION
@WHY_OPTION
@click.pass_context
def outbox_show(ctx: click.Context, outbound_id: int, as_json: bool, why: str) -> None:
    """One outbound email: state, attempts, last error and headers (not its body)."""
    what = f"the headers of outbound email {outbound_id}"
    _show(ctx, partial(views.outbox_detail, outbound_id), as_json, what, why)


def _show(
    ctx: click.Context,
    read: Callable[[], Awaitable[dict[str, Any]]],
    as_json: bool,
    what: str,
    why: str,
) -> None:
    """One record, read from the database: as JSON, or its fields and then its headers. The
    headers of a case's mail name its people: the read goes in the case's audit trail."""

    async def audited(_: Settings) -> dict[str, Any]:
        detail = await read()
        if detail["ticket"]:
            await record(await find_case(detail["ticket"]), operator(), AuditAction.READ, what, why)
        return detail

    detail = with_database(ctx, audited)
    if as_json:
        print_json(detail)
        return
    for key, value in detail.items():
        if key != "headers":
            shown = ", ".join(value) if isinstance(value, list) else value
            console.print(f"{key:<15} {shown if shown is not None else '-'}", markup=False)
    console.rule("headers")
    for name, value in detail["headers"]:
        console.print(f"{name}: {value}", markup=False, highlight=False)


@outbox.command("retry")
@click.argument("outbound_ids", type=int, nargs=-1)
@click.option("--failed", "all_failed", is_flag=True, help="Every email that failed for good.")
@JSON_OPTION
@click.pass_context
def outbox_retry(
    ctx: click.Context, outbound_ids: tuple[int, ...], all_failed: bool, as_json: bool
) -> None:
    """Queue failed or deferred emails again, due now; the next delivery run sends them."""
    if not outbound_ids and not all_failed:
        raise IntakeError("outbox retry: name email ids, or --failed")
    ids = None if all_failed else list(outbound_ids)
    queued = with_database(ctx, lambda _: views.retry_outbound(ids))
    if as_json:
        print_json({"queued": queued})
        return
    click.echo(f"{len(queued)} email(s) back in the queue")


@outbox.command("cancel")
@click.argument("outbound_id", type=int)
@click.option("--reason", required=True, help="Why: recorded on the case with your name.")
@JSON_OPTION
@click.pass_context
def outbox_cancel(ctx: click.Context, outbound_id: int, reason: str, as_json: bool) -> None:
    """Withdraw an email that has not been sent; the case's thread records who and why."""
    who = f"{operator()} (command line)"
    with_database(ctx, lambda settings: views.cancel_outbound(settings, outbound_id, reason, who))
    if as_json:
        print_json({"cancelled": outbound_id, "by": who, "reason": reason})
        return
    click.echo(f"outbound {outbound_id} cancelled")


@click.command()
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
@JSON_OPTION
@click.pass_context
def stats(ctx: click.Context, first_day: str | None, last_day: str | None, as_json: bool) -> None:
    """Anonymous counts and median response times, for a transparency report."""
    from intake.conduct.stats import case_stats, text_report, window

    start, end = window(first_day, last_day)
    report = with_database(ctx, lambda settings: case_stats(settings, start, end))
    if as_json:
        print_json(report)
        return
    text = text_report(report)
    console.print(text.heading, markup=False)
    for title, columns, rows in text.tables:
        print_table(title, columns, rows)
    console.print(text.note, markup=False, highlight=False)


@click.command()
@click.option("--dry-run", is_flag=True, help="Print each digest instead of sending it.")
@click.pass_context
def digest(ctx: click.Context, dry_run: bool) -> None:
    """Send every member the overview of their open cases now (or print it with --dry-run)."""

    async def go(settings: Settings) -> list[Digest]:
        now = datetime.now(UTC)
        if dry_run:
            return await digests(settings, now)
        return await run_digests(settings, now, due_only=False)

    verb = "would be sent" if dry_run else "queued"
    for shown in with_database(ctx, go):
        click.echo(f"{shown.member.email}: {len(shown.rows)} open case(s), {verb}")
        for row in shown.rows:
            click.echo(f"  {row.line()}")


COMMANDS = (tickets, ticket, inbound, outbox, stats, digest)
