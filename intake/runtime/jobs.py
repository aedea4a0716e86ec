"""The daemon's job runner, on APScheduler 3.x: wake-ups that are never lost, one log line per
new failure, backoff, alerts to the leads, and each job's outcome in the metrics and the database.

Runs of one job never overlap (max_instances=1, coalesce). A failing job logs one line and is
tried again after a backoff that doubles up to BACKOFF_MAX. A wake that comes while the job runs
makes it run again at once, in the same run (the scheduler would skip a second instance).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from intake.errors import IntakeError, LoginFailed, TokenRefused
from intake.runtime.alerts import queue_alert
from intake.runtime.metrics import Metrics
from intake.settings.retry import backoff
from intake.settings.schema import Settings
from intake.store.job_runs import job_failed, job_succeeded
from intake.store.leases import release_lease, take_lease

log = logging.getLogger("intake.daemon")

BACKOFF_FIRST = timedelta(seconds=2)
BACKOFF_MAX = timedelta(minutes=10)
RECORD_EVERY = 30.0  # seconds between writes of a job's success to the database
CONNECTION_OF_JOB = {"fetch": "mailbox", "deliver": "outbound"}

Work = Callable[[], Awaitable[None]]


class Jobs:
    def __init__(self, settings: Settings, stop: asyncio.Event, metrics: Metrics) -> None:
        self.settings = settings
        self.stop = stop
        self.metrics = metrics
        self.scheduler = AsyncIOScheduler(
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
        )
        self.in_flight: set[asyncio.Task[None]] = set()
        self.failing: dict[str, str] = {}
        self.failures: dict[str, int] = {}
        self.resume_at: dict[str, float] = {}
        self.alerted: set[str] = set()
        self.busy: dict[str, float] = {}  # job name: when its run began (monotonic)
        self.recorded: dict[str, float] = {}  # job name: when its success was last written
        self.again: set[str] = set()

    def add(self, name: str, every: timedelta, work: Work) -> None:
        """A job due at once, then every `every`; it runs when the scheduler starts."""
        self.scheduler.add_job(
            self.wrap(name, work),
            "interval",
            seconds=every.total_seconds(),
            id=name,
            name=name,
            next_run_time=datetime.now(UTC),
        )

    def stuck(self, after: float) -> list[str]:
        """The jobs whose run began more than `after` seconds ago."""
        now = time.monotonic()
        return [name for name, began in self.busy.items() if now - began > after]

    async def finish(self) -> None:
        """No new runs; the ones in flight finish their message."""
        self.scheduler.pause()
        if self.in_flight:
            await asyncio.gather(*self.in_flight, return_exceptions=True)
        self.scheduler.shutdown(wait=False)

    def wake(self, name: str) -> None:
        """Run job `name` now rather than at its next interval (or, while it backs off after
        failures, as soon as the backoff ends); if it is running, once more as soon as this run
        ends (in the same run: the scheduler would skip a second instance), so that work
        committed during its run is not left waiting."""
        if self.stop.is_set():
            return
        if name in self.busy:
            self.again.add(name)
            return
        self._run_after_backoff(name)

    def wrap(self, name: str, work: Work) -> Work:
        """Wrap a job: one log line per new failure, backoff, alerts, and wake-ups kept."""

        async def run() -> None:
            if self.stop.is_set() or time.monotonic() < self.resume_at.get(name, 0.0):
                return  # stopping, or backing off after failures
            task = asyncio.current_task()
            assert task is not None
            self.in_flight.add(task)
            try:
                while True:  # again at once if woken while it ran: that work is committed
                    self.again.discard(name)
                    self.busy[name] = time.monotonic()  # each pass is progress, not a stuck run
                    await work()
                    if name not in self.again or self.stop.is_set():
                        break
                self.failures.pop(name, None)
                self.resume_at.pop(name, None)
                if name in self.alerted:
                    self.alerted.discard(name)
                    await release_lease(f"alert {name}")  # a new episode is news again
                if self.failing.pop(name, None) is not None:
                    log.info("%s: working again", name)
                self._measure(name, ok=True)
                await self._record_success(name)
            except LoginFailed as exc:
                await self._report(name, str(exc))
                await self._alert_if_persistent(name, exc)
            except IntakeError as exc:
                await self._report(name, str(exc))
            except Exception as exc:  # the daemon outlives any one failure
                await self._report(name, f"{type(exc).__name__}: {exc}")
                log.debug("%s failed", name, exc_info=True)
            finally:
                self.in_flight.discard(task)
                self.busy.pop(name, None)
                if name in self.again:  # woken during a run that failed: once the backoff ends
                    self.again.discard(name)
                    self._run_after_backoff(name, at_least=0.1)  # after this run has ended

        return run

    async def _record_success(self, name: str) -> None:
        """For `intake check`: at most every RECORD_EVERY seconds per job (a job runs every few
        seconds; an idle daemon should not write to the database as often), at once after a
        failure."""
        now = time.monotonic()
        if now - self.recorded.get(name, -RECORD_EVERY) >= RECORD_EVERY:
            await job_succeeded(name)
            self.recorded[name] = now

    def _measure(self, name: str, *, ok: bool) -> None:
        if ok:
            self.metrics.job_success.labels(name).set(time.time())
        else:
            self.metrics.job_failures.labels(name).inc()
        if name in CONNECTION_OF_JOB:
            self.metrics.connection.labels(CONNECTION_OF_JOB[name]).set(int(ok))

    def _run_after_backoff(self, name: str, at_least: float = 0.0) -> None:
        """Due now, or when its backoff after failures ends (and not before `at_least` s)."""
        if self.stop.is_set():
            return
        pause = max(self.resume_at.get(name, 0.0) - time.monotonic(), at_least)
        self.scheduler.modify_job(name, next_run_time=datetime.now(UTC) + timedelta(seconds=pause))

    async def _report(self, name: str, error: str) -> None:
        """One line when a failure starts or changes, not one per poll; then back off,
        doubling the pause up to BACKOFF_MAX, so a server that is down is not hammered. The
        failure is recorded for `intake check` where the database still answers."""
        self._measure(name, ok=False)
        self.recorded.pop(name, None)  # the next success is news
        with contextlib.suppress(Exception):
            await job_failed(name, error)
        if self.failing.get(name) != error:
            log.error("%s: %s", name, error)
        self.failing[name] = error
        failures = self.failures.get(name, 0) + 1
        self.failures[name] = failures
        pause = backoff(BACKOFF_FIRST, failures, BACKOFF_MAX)
        self.resume_at[name] = time.monotonic() + pause.total_seconds()

    async def _alert_if_persistent(self, name: str, exc: LoginFailed) -> None:
        """A login refused again and again will not heal by itself: say so loudly, once per
        episode, in the log, and (configurably) by email to the leads, once per
        `[alerts] repeat_every` while it lasts, whichever of the daemons sharing the database
        sees it (a lease). A refused OAuth2 refresh token is known for what it is at the first
        refusal: it is said at once."""
        alerts = self.settings.alerts
        error = str(exc)
        at_once = isinstance(exc, TokenRefused)
        if not at_once and self.failures.get(name, 0) < alerts.after_failures:
            return
        if name not in self.alerted:
            self.alerted.add(name)
            if at_once:
                log.critical("%s: cannot log in; a person must act: %s", name, error)
            else:
                log.critical(
                    "%s: login refused %d times in a row; a person must act: %s",
                    name,
                    self.failures[name],
                    error,
                )
        if not alerts.email_leads:
            return
        try:
            if await take_lease(f"alert {name}", alerts.repeat_every, renew=False):
                await queue_alert(self.settings, name, error, token_refused=at_once)
        except Exception as problem:  # the alert is a courtesy; the log line stands
            log.error("%s: could not queue the alert email: %s", name, problem)
