"""The daemon: APScheduler 3.x jobs for fetch, process, deliver and deadlines.

Runs of one job never overlap (max_instances=1, coalesce). A failing job logs one line and is
tried again at its next interval. On SIGTERM or SIGINT the jobs stop between messages: the
message in hand is finished, connections are closed, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from intake.conduct.deadlines import run_deadlines
from intake.conduct.digest import run_digests, sent_lines
from intake.conduct.handlers import registry
from intake.engine.pipeline import process_pending
from intake.errors import IntakeError, LoginFailed
from intake.runtime.alerts import queue_alert
from intake.runtime.cycle import running
from intake.settings.loading import OUTSIDE_CONTACT_MISSING
from intake.settings.retry import backoff
from intake.settings.schema import Settings
from intake.transport.delivery import deliver_once
from intake.transport.fetch import fetch_once

log = logging.getLogger("intake.daemon")

BACKOFF_FIRST = timedelta(seconds=2)
BACKOFF_MAX = timedelta(minutes=10)


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = registry(settings)
        self.stop = asyncio.Event()
        self.in_flight: set[asyncio.Task[None]] = set()
        self.failing: dict[str, str] = {}
        self.failures: dict[str, int] = {}
        self.resume_at: dict[str, float] = {}
        self.alerted: set[str] = set()
        self.scheduler = AsyncIOScheduler(
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
        )

    def _job(
        self, name: str, work: Callable[[], Awaitable[bool]], wakes: str | None
    ) -> Callable[[], Awaitable[None]]:
        """Wrap a job: one log line per new failure; when it did something, wake `wakes` now
        instead of at its next interval, so a report is acknowledged seconds after it is fetched."""

        async def run() -> None:
            if self.stop.is_set() or time.monotonic() < self.resume_at.get(name, 0.0):
                return  # stopping, or backing off after failures
            task = asyncio.current_task()
            assert task is not None
            self.in_flight.add(task)
            try:
                if await work() and wakes and not self.stop.is_set():
                    self.scheduler.modify_job(wakes, next_run_time=datetime.now(UTC))
                self.failures.pop(name, None)
                self.resume_at.pop(name, None)
                self.alerted.discard(name)
                if self.failing.pop(name, None) is not None:
                    log.info("%s: working again", name)
            except LoginFailed as exc:
                self._report(name, str(exc))
                await self._alert_if_persistent(name, str(exc))
            except IntakeError as exc:
                self._report(name, str(exc))
            except Exception as exc:  # the daemon outlives any one failure
                self._report(name, f"{type(exc).__name__}: {exc}")
                log.debug("%s failed", name, exc_info=True)
            finally:
                self.in_flight.discard(task)

        return run

    def _report(self, name: str, error: str) -> None:
        """One line when a failure starts or changes, not one per poll; then back off,
        doubling the pause up to BACKOFF_MAX, so a server that is down is not hammered."""
        if self.failing.get(name) != error:
            log.error("%s: %s", name, error)
        self.failing[name] = error
        failures = self.failures.get(name, 0) + 1
        self.failures[name] = failures
        pause = backoff(BACKOFF_FIRST, failures, BACKOFF_MAX)
        self.resume_at[name] = time.monotonic() + pause.total_seconds()

    async def _alert_if_persistent(self, name: str, error: str) -> None:
        """A login refused again and again will not heal by itself: say so loudly, once per
        episode, in the log and (configurably) by email to the leads."""
        alerts = self.settings.alerts
        if name in self.alerted or self.failures.get(name, 0) < alerts.after_failures:
            return
        self.alerted.add(name)
        log.critical(
            "%s: login refused %d times in a row; a person must act: %s",
            name,
            self.failures[name],
            error,
        )
        if alerts.email_leads:
            try:
                await queue_alert(self.settings, name, error)
            except Exception as exc:  # the alert is a courtesy; the log line stands
                log.error("%s: could not queue the alert email: %s", name, exc)

    async def _fetch(self) -> bool:
        return (await fetch_once(self.settings, self.stop)).stored > 0

    async def _process(self) -> bool:
        return (await process_pending(self.settings, self.registry, self.stop)).processed > 0

    async def _deliver(self) -> bool:
        await deliver_once(self.settings, self.stop)
        return False

    async def _deadlines(self) -> bool:
        now = datetime.now(UTC)
        sent = await run_deadlines(self.settings, now)
        sent += sent_lines(await run_digests(self.settings, now))
        for line in sent:
            log.info("%s", line)
        return bool(sent)

    def add_jobs(self) -> None:
        """Register the jobs, each due at once; they run when the scheduler starts."""
        schedule = self.settings.schedule
        jobs: dict[str, tuple[timedelta, Callable[[], Awaitable[bool]], str | None]] = {
            "fetch": (schedule.fetch_every, self._fetch, "process"),
            "process": (schedule.process_every, self._process, "deliver"),
            "deliver": (schedule.deliver_every, self._deliver, None),
            "deadlines": (schedule.deadlines_every, self._deadlines, "deliver"),
        }
        for name, (every, work, wakes) in jobs.items():
            self.scheduler.add_job(
                self._job(name, work, wakes),
                "interval",
                seconds=every.total_seconds(),
                id=name,
                name=name,
                next_run_time=datetime.now(UTC),
            )

    async def serve(self) -> None:
        settings = self.settings
        scheduler = self.scheduler
        async with running(settings):
            self.add_jobs()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._on_signal, signum)
            if settings.organisation.outside_contact is None:
                log.warning("%s", OUTSIDE_CONTACT_MISSING)
            scheduler.start()
            log.info(
                "intake running: mailbox %s, outbound %s, database %s",
                settings.mailbox.kind,
                settings.outbound.kind,
                settings.database.url.split("://", 1)[0],
            )
            try:
                await self.stop.wait()
            finally:
                scheduler.pause()  # no new runs; the ones in flight finish their message
                if self.in_flight:
                    await asyncio.gather(*self.in_flight, return_exceptions=True)
                scheduler.shutdown(wait=False)
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)
        log.info("intake stopped")

    def _on_signal(self, signum: int) -> None:
        log.info("received %s: finishing the message in hand", signal.Signals(signum).name)
        self.stop.set()
