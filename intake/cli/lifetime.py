"""The commands for the records' lifetime: purge what the retention policy lets go, erase a
person on request, show a case's audit trail, export a case."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from intake.cli.common import (
    JSON_OPTION,
    WHY_OPTION,
    console,
    operator,
    print_json,
    print_table,
    with_database,
)
from intake.conduct.audit import trail
from intake.conduct.case_record import find_case
from intake.conduct.erasure import ErasurePlan, erase, plan_erasure
from intake.conduct.export import export_case
from intake.conduct.purge import Due, PurgeRun, run_purge
from intake.settings.schema import Settings


def _due_row(item: Due) -> dict[str, Any]:
    return {
        "ref": item.ref,
        "kind": item.kind,
        "resolution": item.resolution,
        "rule": item.rule,
        "due_at": item.due_at.isoformat(timespec="seconds"),
        "held": item.held,
    }


@click.command()
@click.option("--dry-run", is_flag=True, help="List what would be purged; change nothing.")
@JSON_OPTION
@click.pass_context
def purge(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Remove the content of cases whose retention period has run out ([retention])."""

    async def go(settings: Settings) -> PurgeRun:
        return await run_purge(settings, datetime.now(UTC), operator(), dry_run)

    run = with_database(ctx, go)
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "purged" if not dry_run else "would_purge": [_due_row(i) for i in run.purged],
                "held": [_due_row(item) for item in run.held],
                "no_case_messages": run.no_case_messages,
                "no_case_emails": run.no_case_emails,
                "files_removed": run.files_removed,
            }
        )
        return
    verb = "would be purged" if dry_run else "purged"
    print_table(
        f"Cases {verb}",
        ["ref", "kind", "resolution", "due since", "rule"],
        [[i.ref, i.kind, i.resolution or "-", f"{i.due_at:%Y-%m-%d}", i.rule] for i in run.purged],
    )
    for item in run.held:
        click.echo(f"kept: {item.ref} is due, but {item.held}")
    if not dry_run:
        click.echo(
            f"{len(run.purged)} case(s) purged, {run.files_removed} file(s) removed;"
            f" {run.no_case_messages} message(s) and {run.no_case_emails} email(s) about no"
            " case cleared"
        )


def _show_plan(plan: ErasurePlan) -> None:
    for ticket in plan.erase:
        click.echo(f"erase from {ticket.ref} ({ticket.kind}, {ticket.status})")
    for ticket, reason in plan.kept:
        click.echo(f"keep whole {ticket.ref}: {reason}")
    messages, emails = plan.no_case
    click.echo(f"clear {messages} stored message(s) and {emails} email(s) about no case")


@click.command("erase")
@click.option(
    "--person",
    "addresses",
    multiple=True,
    required=True,
    metavar="ADDRESS",
    help="The person's address (repeat for each of their addresses).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be touched; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask before erasing.")
@click.pass_context
def erase_person(ctx: click.Context, addresses: tuple[str, ...], dry_run: bool, yes: bool) -> None:
    """Remove a person's addresses and words from every case that may lose them; cases that
    must be kept are named with the reason. Shows what it will touch first."""

    async def go(settings: Settings) -> list[str]:
        now = datetime.now(UTC)
        plan = await plan_erasure(settings, addresses, now)
        _show_plan(plan)
        if dry_run or not (plan.erase or plan.kept or any(plan.no_case)):
            return []
        if not yes and not click.confirm("Erase this for good?", default=False):
            raise click.Abort
        return await erase(settings, plan, operator(), now)

    for line in with_database(ctx, go):
        click.echo(line)


@click.command()
@click.argument("ref")
@JSON_OPTION
@click.pass_context
def audit(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Who read a case, what it was sent to, and when and why."""

    async def go(_: Settings) -> list[dict[str, Any]]:
        return [line.as_json() for line in await trail(await find_case(ref))]

    lines = with_database(ctx, go)
    if as_json:
        print_json(lines)
        return
    print_table(
        f"Audit trail of {ref.upper()}",
        ["when", "action", "who", "what", "why"],
        [[r["at"], r["action"], r["actor"], r["what"], r["why"]] for r in lines],
    )


@click.command("export")
@click.argument("ref")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The archive to write (default: REF.zip here); never overwritten.",
)
@WHY_OPTION
@click.pass_context
def export(ctx: click.Context, ref: str, output: Path | None, why: str) -> None:
    """Write one case as a self-contained archive (thread, messages, attachments, audit)."""
    target = output or Path(f"{ref.upper()}.zip")

    async def go(settings: Settings) -> Path:
        _, path = await export_case(settings, ref, target, operator(), why)
        return path

    path = with_database(ctx, go)
    console.print(f"{ref.upper()} exported to {path}", markup=False)


COMMANDS = (purge, erase_person, audit, export)
