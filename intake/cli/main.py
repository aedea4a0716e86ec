"""The `intake` command (click for the commands, rich for the tables): running Intake, and
(intake.cli.records) reading its records."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import click

from intake.cli.common import (
    print_table,
    ready_to_connect,
    run_async,
    settings_of,
    with_database,
)
from intake.cli.lifetime import COMMANDS as RECORD_LIFETIME
from intake.cli.logs import LogFormat, configure_logging
from intake.cli.oauth import oauth
from intake.cli.records import COMMANDS
from intake.conduct.deadlines import run_deadlines
from intake.conduct.digest import run_digests, sent_lines
from intake.conduct.purge import PURGE_ACTOR, report_purge, scheduled_purge
from intake.conduct.roster import upcoming_shifts
from intake.errors import IntakeError, SettingsError
from intake.runtime.cycle import CycleStats, poll_once
from intake.settings.loading import OUTSIDE_CONTACT_MISSING, load_settings, require_secrets
from intake.settings.schema import Settings
from intake.store.job_runs import job_succeeded
from intake.transport.fetch import Backfill


@click.group()
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Settings file (default: $INTAKE_CONFIG, else ./settings.toml).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    help="Log lines as text, or as one JSON object per line (for log shippers).",
)
@click.pass_context
def cli(ctx: click.Context, config: str | None, verbose: bool, log_format: LogFormat) -> None:
    """Intake: email intake and confidential case handling for Code of Conduct teams."""
    configure_logging(verbose, log_format)
    ctx.ensure_object(dict)
    ctx.obj["settings_loader"] = lambda: load_settings(config)


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the daemon: fetch, process and deliver on a schedule until SIGTERM or SIGINT."""
    from intake.runtime.daemon import Daemon

    settings = settings_of(ctx)
    ready_to_connect(settings)
    run_async(Daemon(settings).serve())


@cli.command()
@click.option("--once", is_flag=True, default=True, help="One cycle, then exit (the default).")
@click.pass_context
def poll(ctx: click.Context, once: bool) -> None:
    """Run the deadlines, digests and the scheduled purge, then one fetch, process and deliver
    cycle, and exit (for cron)."""

    async def deadlines_then_cycle(
        settings: Settings,
    ) -> tuple[list[str], list[str], CycleStats]:
        now = datetime.now(UTC)
        reminders = await run_deadlines(settings, now)
        digests = sent_lines(await run_digests(settings, now))
        purged = await scheduled_purge(settings, now, PURGE_ACTOR)
        report_purge(purged, logging.getLogger("intake.poll"))
        stats = await poll_once(settings)
        for job in ("fetch", "process", "deliver", "deadlines"):  # for `intake check`
            await job_succeeded(job)
        return reminders, digests, stats

    reminders, digests, stats = with_database(ctx, deadlines_then_cycle, connects=True)
    click.echo(
        f"fetched {stats.fetch.stored} new, processed {stats.process.processed}"
        f" ({stats.process.failed} failed), sent {stats.deliver.sent}"
        f" ({stats.deliver.deferred} deferred, {stats.deliver.failed} failed);"
        f" {len(reminders)} deadline reminders, {len(digests)} digests"
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
    stats = with_database(ctx, lambda s: poll_once(s, backfill=plan), connects=True)
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

    settings = settings_of(ctx)
    require_secrets(settings)
    click.echo(f"ok       settings   {settings.source_file}")
    if settings.organisation.outside_contact is None:
        click.echo(f"warning  settings   {OUTSIDE_CONTACT_MISSING}")
    results = run_async(run_checks(settings))
    for check in results:
        click.echo(f"{check.status:<8} {check.name:<10} {check.text}")
    if any(check.status == "FAILED" for check in results):
        sys.exit(1)


@cli.command()
@click.option("--at", "at", default=None, help="An instant (ISO 8601); default: now.")
@click.option("--periods", default=4, show_default=True, help="How many periods to show.")
@click.pass_context
def roster(ctx: click.Context, at: str | None, periods: int) -> None:
    """Who is on duty now (or at --at), and for the next periods."""
    settings = settings_of(ctx)
    instant = _instant(at, settings)
    shifts = upcoming_shifts(settings, instant, max(periods, 1))
    print_table(
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


for _command in (*COMMANDS, *RECORD_LIFETIME, oauth):
    cli.add_command(_command)


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
