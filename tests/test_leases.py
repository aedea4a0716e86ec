"""Leases and claims: one holder at a time, renewal by the holder only, work once per period,
and a dead process's leases freed when a daemon starts on the same host."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime, timedelta

from intake.runtime.jobs import Jobs
from intake.runtime.metrics import Metrics
from intake.settings.schema import Settings
from intake.store.job_runs import job_failed, job_runs, job_succeeded
from intake.store.leases import HOST, free_leases_of_the_dead, release_lease, take_lease
from intake.store.models import JobLease, OutboundMessage
from intake.transport.claims import Claim

MINUTE = timedelta(minutes=1)


async def _as_another_holder(name: str, holder: str, until: datetime) -> None:
    await JobLease.bulk_create([JobLease(name=name, holder="", until=until)], ignore_conflicts=True)
    await JobLease.filter(name=name).update(holder=holder, until=until)


async def test_a_lease_has_one_holder_until_it_expires_or_is_given_back(db: Settings) -> None:
    now = datetime.now(UTC)
    assert await take_lease("fetch x", MINUTE, now=now)
    assert await take_lease("fetch x", MINUTE, now=now + timedelta(seconds=30))  # renewed
    await _as_another_holder("fetch y", "elsewhere:1:abc", now + MINUTE)
    assert not await take_lease("fetch y", MINUTE, now=now)
    assert await take_lease("fetch y", MINUTE, now=now + 2 * MINUTE)  # expired: ours now
    await release_lease("fetch y")
    await _as_another_holder("fetch z", "elsewhere:1:abc", now + MINUTE)
    await release_lease("fetch z")  # not ours to give back
    assert not await take_lease("fetch z", MINUTE, now=now)


async def test_work_once_per_period_is_not_renewed_even_by_its_holder(db: Settings) -> None:
    now = datetime.now(UTC)
    assert await take_lease("alert fetch", timedelta(days=1), renew=False, now=now)
    assert not await take_lease("alert fetch", timedelta(days=1), renew=False, now=now + MINUTE)
    assert await take_lease(
        "alert fetch", timedelta(days=1), renew=False, now=now + 25 * 60 * MINUTE
    )


async def test_the_leases_and_claims_of_a_dead_process_on_this_host_are_freed(
    db: Settings,
) -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()
    dead = f"{HOST}:{ended.pid}:abcdef"
    later = datetime.now(UTC) + timedelta(hours=1)
    await _as_another_holder("fetch dead", dead, later)
    await _as_another_holder("fetch remote", "another-host:1:abcdef", later)
    row = await OutboundMessage.create(
        kind="acknowledgement",
        sender="info@example.org",
        recipients=["sam@example.net"],
        message_id="<x@example.org>",
        subject="s",
        raw_bytes=b"x",
        claimed_by=dead,
        claimed_until=later,
    )
    assert await Claim(MINUTE).take(10) == []  # claimed by the dead process: skipped

    assert await free_leases_of_the_dead() == [dead]
    assert await take_lease("fetch dead", MINUTE)
    assert not await take_lease("fetch remote", MINUTE)  # alive or not, we cannot tell
    [taken] = await Claim(MINUTE).take(10)
    assert taken.id == row.id


async def test_a_run_that_lost_its_claim_leaves_those_rows_to_their_new_holder(
    db: Settings,
) -> None:
    rows = [
        await OutboundMessage.create(
            kind="acknowledgement",
            sender="info@example.org",
            recipients=[f"r{n}@example.net"],
            message_id=f"<lost-{n}@example.org>",
            subject="s",
            raw_bytes=b"x",
        )
        for n in range(3)
    ]
    claim = Claim(MINUTE)
    taken = await claim.take(10)
    assert [row.id for row in taken] == [row.id for row in rows]
    # Our claim ran out (a slow send) and another daemon took the second row.
    await OutboundMessage.filter(id=rows[1].id).update(
        claimed_by="elsewhere:1:abc", claimed_until=datetime.now(UTC) + MINUTE
    )
    claim.until = datetime.now(UTC)
    await claim.keep(taken)
    assert [row.id for row in taken if claim.ours(row)] == [rows[0].id, rows[2].id]
    await claim.release(taken)
    holders = await OutboundMessage.all().order_by("id").values_list("claimed_by", flat=True)
    assert holders == [None, "elsewhere:1:abc", None]  # theirs stays theirs


async def test_two_daemons_seeing_the_same_refused_login_mail_the_leads_once(
    db: Settings,
) -> None:
    """The alert is the only mail the jobs themselves send: to the leads alone, once per
    `repeat_every` across the daemons sharing the database."""
    daemons = [Jobs(db, asyncio.Event(), Metrics()) for _ in range(2)]
    for jobs in daemons:
        jobs.failures["fetch"] = db.alerts.after_failures
        await jobs._alert_if_persistent("fetch", "imap://x: login failed")
    alerts = await OutboundMessage.filter(kind="alert").values_list("recipients", flat=True)
    assert alerts == [["alice@example.org"]]  # the lead, once


async def test_a_jobs_outcome_keeps_the_other_outcome_of_its_row(db: Settings) -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC)
    await job_failed("process", "boom", when=first)
    await job_succeeded("process", when=first + MINUTE)
    await job_failed("process", "again", when=first + 2 * MINUTE)
    (run,) = await job_runs()
    assert (run.name, run.succeeded_at, run.failed_at, run.error) == (
        "process",
        first + MINUTE,
        first + 2 * MINUTE,
        "again",
    )
    await job_succeeded("process", when=first + 3 * MINUTE)
    (run,) = await job_runs()
    assert (run.succeeded_at, run.failed_at, run.error) == (
        first + 3 * MINUTE,
        first + 2 * MINUTE,
        "",
    )
