"""`intake check`: each connection tried once, then what the database says of the work, one
line each; usable as a health check, since it exits non-zero when anything is out of bounds.

Out of bounds (FAILED): a connection that fails; a message waiting longer than
`[schedule] lag_warning`; fetch, process or deliver not done (by any daemon, or `intake poll`)
for longer than that plus their interval, or another job failing for that long. A database
no daemon has worked on yet has no job lines.
Worth a look but not a failure (warning): mail parked or failed for good, which needs a person
(`intake inbound retry`, `intake outbox retry`); cases due for purging while the scheduled
purge is off.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise import connections

from intake.conduct.purge import cases_due, policy_starts
from intake.errors import IntakeError
from intake.mail.sanitize import short_duration
from intake.runtime.cycle import running
from intake.runtime.health import queue_figures
from intake.settings.schema import Settings
from intake.settings.types import format_duration
from intake.store.db import connection_name
from intake.store.job_runs import job_runs
from intake.store.models import JobRun
from intake.transport.mailbox import open_mailbox
from intake.transport.oauth2.token_file import load_token, token_path
from intake.transport.oauth2.tokens import LOGIN_COMMAND
from intake.transport.transports import make_transport

OK, WARNING, FAILED = "ok", "warning", "FAILED"
CORE_JOBS = ("fetch", "process", "deliver")  # the road of every message: never idle for long


@dataclass(frozen=True)
class Check:
    status: str  # OK, WARNING or FAILED
    name: str
    text: str


async def _check_mailbox(settings: Settings) -> Check:
    mailbox = open_mailbox(settings)
    try:
        await asyncio.to_thread(mailbox.open)
    except IntakeError as exc:
        detail = str(exc).removeprefix(mailbox.identity + ": ")
        return Check(FAILED, "mailbox", f"{mailbox.identity}: {detail}")
    try:
        push = _push_line(settings, mailbox.offers_push())
    finally:
        await asyncio.to_thread(mailbox.close)
    return Check(OK, "mailbox", f"{mailbox.identity} {mailbox.folder}, {push}")


def _push_line(settings: Settings, offered: bool) -> str:
    poll = f"polling every {format_duration(settings.schedule.fetch_every)}"
    if not settings.mailbox.push:
        return f"push: off, {poll}"
    if not offered:
        return f"push: IDLE not offered, {poll}"
    how = "IMAP IDLE" if settings.mailbox.kind == "imap" else "watched"
    return f"push: {how}"


async def _check_outbound(settings: Settings) -> Check:
    transport = make_transport(settings)
    target = transport.name
    try:
        await transport.open()
    except IntakeError as exc:
        return Check(FAILED, "outbound", f"{target}: {str(exc).removeprefix(target + ': ')}")
    await transport.close()
    return Check(OK, "outbound", target)


async def _check_database(settings: Settings) -> list[Check]:
    target = settings.database.url.split("@")[-1]
    try:
        async with running(settings, sync=False):  # a check changes nothing but the schema
            return [Check(OK, "database", target), *await _the_work(settings)]
    except Exception as exc:  # asyncpg's own errors are neither ORM errors nor OSError
        return [Check(FAILED, "database", f"{target}: {type(exc).__name__}: {exc}")]


async def _the_work(settings: Settings) -> list[Check]:
    now = datetime.now(UTC)
    bound = settings.schedule.lag_warning
    connection = connections.get(connection_name(settings.database.url))
    _, rows = await connection.execute_query("SELECT name FROM tortoise_migrations ORDER BY id")
    checks = [Check(OK, "schema", f"{rows[-1]['name']} ({len(rows)} migrations applied)")]
    figures = await queue_figures(now)
    late = figures.oldest_waiting is not None and figures.oldest_waiting > bound
    checks.append(Check(FAILED if late else OK, "queues", figures.line()))
    if figures.inbound_parked or figures.outbound_failed:
        checks.append(
            Check(
                WARNING,
                "queues",
                f"{figures.inbound_parked} message(s) parked, {figures.outbound_failed} email(s)"
                " failed: see `intake inbound --failed` and `intake outbox`",
            )
        )
    checks += [
        _job_check(run, now, bound + _interval(settings, run.name)) for run in await job_runs()
    ]
    checks.append(await _check_retention(settings, now))
    return checks


async def _check_retention(settings: Settings, now: datetime) -> Check:
    """What the retention policy has waiting: a warning when it is due and nobody purges."""
    due, held = await cases_due(settings, now)
    text = f"{len(due)} case(s) due for purging, {len(held)} held"
    if not settings.retention.purge:
        if due:
            return Check(WARNING, "retention", f"{text}; [retention] purge = false: `intake purge`")
        return Check(OK, "retention", f"{text}; purged by hand ([retention] purge = false)")
    text += f"; purged every {format_duration(settings.retention.every)}"
    starts = await policy_starts(settings)
    if starts is None or starts > now:
        when = (
            f"{format_duration(settings.retention.grace)} after the first scheduled run"
            if starts is None
            else f"{starts:%Y-%m-%d %H:%M} UTC"
        )
        text += f"; this policy is new here: purging starts {when} ([retention] grace)"
        if due:
            return Check(WARNING, "retention", f"{text}; `intake purge --dry-run` lists them")
    return Check(OK, "retention", text)


def _interval(settings: Settings, job: str) -> timedelta:
    schedule = settings.schedule
    every = {
        "fetch": max(schedule.fetch_every, schedule.fetch_every_while_pushed),
        "process": schedule.process_every,
        "deliver": schedule.deliver_every,
        "deadlines": schedule.deadlines_every,
    }
    return every.get(job, timedelta(minutes=1))


def _job_check(run: JobRun, now: datetime, bound: timedelta) -> Check:
    last = run.succeeded_at
    said = f"last success {short_duration(now - last)} ago" if last else "never succeeded"
    failed_at = run.failed_at
    failed = failed_at is not None and (last is None or failed_at > last)
    if failed_at is not None and failed:
        said += f"; failed {short_duration(now - failed_at)} ago: {run.error}"
    stale = last is None or now - last > bound
    out_of_bounds = stale and (failed or run.name in CORE_JOBS)
    return Check(FAILED if out_of_bounds else OK, f"job {run.name}", said)


def _check_oauth2(settings: Settings) -> list[Check]:
    """The token file, read as the daemon would: missing, refused, or when it was last used."""
    if settings.oauth2 is None:
        return []
    path = token_path(settings.data_dir)
    try:
        token = load_token(path)
    except IntakeError as exc:
        return [Check(FAILED, "oauth2", str(exc))]
    if token is None:
        return [Check(FAILED, "oauth2", f"no token in {path}: run `{LOGIN_COMMAND}`")]
    now = datetime.now(UTC)
    if token.refused is not None and token.refused_at is not None:
        ago = short_duration(now - token.refused_at)
        return [
            Check(
                FAILED,
                "oauth2",
                f"{token.account}: the provider refused the refresh token {ago} ago"
                f" ({token.refused}): run `{LOGIN_COMMAND}`",
            )
        ]
    used = token.refreshed_at or token.obtained_at
    return [
        Check(
            OK,
            "oauth2",
            f"{token.account} ({token.provider}), refresh token last used"
            f" {short_duration(now - used)} ago",
        )
    ]


async def run_checks(settings: Settings) -> list[Check]:
    return [
        *_check_oauth2(settings),
        await _check_mailbox(settings),
        await _check_outbound(settings),
        *await _check_database(settings),
    ]
