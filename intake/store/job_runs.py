"""Each daemon job's last success and last failure, in the database, so that any daemon or
command can tell whether the work is being done (`intake check`)."""

from __future__ import annotations

from datetime import UTC, datetime

from intake.store.leases import HOLDER
from intake.store.models import JobRun


async def _row(name: str) -> None:
    await JobRun.bulk_create([JobRun(name=name)], ignore_conflicts=True)


async def job_succeeded(name: str, when: datetime | None = None) -> None:
    await _row(name)
    await JobRun.filter(name=name).update(
        succeeded_at=when or datetime.now(UTC), holder=HOLDER, error=""
    )


async def job_failed(name: str, error: str, when: datetime | None = None) -> None:
    await _row(name)
    await JobRun.filter(name=name).update(
        failed_at=when or datetime.now(UTC), holder=HOLDER, error=error[:2000]
    )


async def job_runs() -> list[JobRun]:
    return list(await JobRun.all().order_by("name"))
