"""Each daemon job's last success and last failure, in the database, so that any daemon or
command can tell whether the work is being done (`intake check`)."""

from __future__ import annotations

from datetime import UTC, datetime

from intake.store.leases import HOLDER
from intake.store.models import JobRun


async def _upsert(run: JobRun, fields: list[str]) -> None:
    """Insert or update in one statement: a row inserted first and updated after would be seen
    by another daemon's `intake check` in between as a job that never succeeded."""
    await JobRun.bulk_create([run], on_conflict=["name"], update_fields=fields)


async def job_succeeded(name: str, when: datetime | None = None) -> None:
    run = JobRun(name=name, succeeded_at=when or datetime.now(UTC), holder=HOLDER, error="")
    await _upsert(run, ["succeeded_at", "holder", "error"])


async def job_failed(name: str, error: str, when: datetime | None = None) -> None:
    run = JobRun(name=name, failed_at=when or datetime.now(UTC), holder=HOLDER, error=error[:2000])
    await _upsert(run, ["failed_at", "holder", "error"])


async def job_runs() -> list[JobRun]:
    return list(await JobRun.all().order_by("name"))
