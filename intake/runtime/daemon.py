"""The daemon: the jobs (fetch, process, deliver, deadlines, purge, lag, status; run by
intake/runtime/jobs.py), push, systemd and the metrics endpoint.

Stages wake each other as soon as they have committed work
(a wake that comes while the job runs makes it run again at once), and push wakes the fetch
the moment mail arrives, so a report is acknowledged within seconds, not at the next interval.
On SIGTERM or SIGINT the jobs stop between messages: the message in hand is finished,
connections are closed, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from intake.conduct.deadlines import run_deadlines
from intake.conduct.digest import run_digests, sent_lines
from intake.conduct.handlers import registry
from intake.conduct.purge import PURGE_ACTOR, report_purge, scheduled_purge
from intake.engine.pipeline import process_pending
from intake.errors import IntakeError
from intake.runtime.courier import outbound_transport
from intake.runtime.cycle import running
from intake.runtime.health import queue_figures
from intake.runtime.jobs import Jobs
from intake.runtime.lag import LagWatch
from intake.runtime.metrics import Metrics
from intake.runtime.systemd import Systemd
from intake.settings.loading import OUTSIDE_CONTACT_MISSING
from intake.settings.schema import Settings
from intake.settings.types import format_duration
from intake.store.leases import release_lease, take_lease
from intake.transport.delivery import deliver_once
from intake.transport.fetch import fetch_once
from intake.transport.kept_open import KeptOpen
from intake.transport.push import News, watch

log = logging.getLogger("intake.daemon")

LAG_CHECK_EVERY = timedelta(minutes=1)
STATUS_EVERY = timedelta(seconds=15)  # queue figures for the metrics and systemd's status
STUCK_AFTER = 60 * 60.0  # seconds: one pass of a job this long stops the watchdog's pets
FETCH_ELSEWHERE_RETRY = timedelta(seconds=2)


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = registry(settings)
        self.stop = asyncio.Event()
        self.systemd = Systemd()
        self.metrics = Metrics()
        self.jobs = Jobs(settings, self.stop, self.metrics)
        self.scheduler = self.jobs.scheduler
        self.wake = self.jobs.wake
        self.outbound = KeptOpen(outbound_transport(settings), settings.outbound.keep_open)
        self.lag = LagWatch(settings.schedule.lag_warning, datetime.now(UTC))
        self.push: News | None = None  # None: push is off, or has not reported yet
        self.polling_every = settings.schedule.fetch_every

    async def _fetch(self) -> None:
        stats = await fetch_once(self.settings, self.stop, on_stored=lambda: self.wake("process"))
        now = datetime.now(UTC)
        self.lag.fetched(now)
        if stats.elsewhere:  # another daemon's fetch may have listed the mailbox before the
            # mail that woke us arrived: look again shortly, rather than at the next poll
            self.scheduler.modify_job("fetch", next_run_time=now + FETCH_ELSEWHERE_RETRY)

    async def _process(self) -> None:
        wake = lambda: self.wake("deliver")  # noqa: E731
        stats = await process_pending(self.settings, self.registry, self.stop, on_committed=wake)
        for outcome, count in stats.outcomes.items():
            self.metrics.inbound.labels(outcome).inc(count)

    async def _deliver(self) -> None:
        transport = await self.outbound.take()
        try:
            stats = await deliver_once(self.settings, self.stop, transport=transport)
        finally:
            self.outbound.release()
        for result in ("sent", "deferred", "failed"):
            self.metrics.outbound.labels(result).inc(getattr(stats, result))
        for seconds in stats.acknowledged_after:
            self.metrics.waits.observe(seconds)

    async def _deadlines(self) -> None:
        """Once per interval across all daemons sharing the database (a lease), though two
        runs at once would still send each reminder once (its unique key) and each digest
        once (its lock)."""
        every = self.settings.schedule.deadlines_every
        if not await take_lease("deadlines", every * 0.9, renew=False):
            return
        now = datetime.now(UTC)
        try:
            sent = await run_deadlines(self.settings, now)
            sent += sent_lines(await run_digests(self.settings, now))
        except Exception:
            await release_lease("deadlines")  # a failed run is no run: the retry must run
            raise
        for line in sent:
            log.info("%s", line)
        if sent:
            self.wake("deliver")

    async def _purge(self) -> None:
        """What the retention policy lets go, once per interval across daemons."""
        report_purge(await scheduled_purge(self.settings, datetime.now(UTC), PURGE_ACTOR), log)

    async def _lag(self) -> None:
        await self.lag.check(datetime.now(UTC), self.push or "off")

    async def _status(self) -> None:
        """The queue figures, for the metrics and for systemd; and the watchdog's pet while
        the daemon is healthy: this job runs on the event loop, so a stuck loop stops the
        pets, and so does a job stuck in one run for STUCK_AFTER; systemd then restarts the
        daemon."""
        try:
            figures = await queue_figures(datetime.now(UTC))
        except Exception as exc:  # the database's trouble is the jobs' to report, not a hang
            line = f"queue figures unavailable: {type(exc).__name__}"
        else:
            self.metrics.queues(figures)
            line = figures.line()
        if not self.systemd.address:
            return
        status = f"{line}; push: {self.push or 'off'}"
        stuck = self.jobs.stuck(STUCK_AFTER)
        if stuck:
            self.systemd.notify(status=f"stuck: {', '.join(stuck)}; {status}")
        elif self.systemd.watchdog is not None:
            self.systemd.alive(status)
        else:
            self.systemd.notify(status=status)

    def add_jobs(self) -> None:
        """Register the jobs, each due at once; they run when the scheduler starts."""
        schedule = self.settings.schedule
        jobs: dict[str, tuple[timedelta, Callable[[], Awaitable[None]]]] = {
            "fetch": (schedule.fetch_every, self._fetch),
            "process": (schedule.process_every, self._process),
            "deliver": (schedule.deliver_every, self._deliver),
            "deadlines": (schedule.deadlines_every, self._deadlines),
            "lag": (LAG_CHECK_EVERY, self._lag),
        }
        if self.settings.retention.purge:
            jobs["purge"] = (self.settings.retention.every, self._purge)
        if self.systemd.address or self.settings.metrics.address:
            watchdog = self.systemd.watchdog
            jobs["status"] = (
                min(watchdog / 2, STATUS_EVERY) if watchdog else STATUS_EVERY,
                self._status,
            )
        for name, (every, work) in jobs.items():
            self.jobs.add(name, every, work)

    async def _push(self) -> None:
        """Push is a convenience on top of the poll: if it fails in a way nobody foresaw, say
        so once and carry on polling."""
        try:
            await watch(self.settings, self.heard, self.stop)
        except Exception as exc:
            log.debug("push failed", exc_info=True)
            self.heard(News.UNAVAILABLE, f"stopped: {type(exc).__name__}: {exc}")

    def heard(self, news: News, detail: str) -> None:
        """What push says: mail arrived (fetch now), or push came up, broke or cannot work.
        Each change of state is one log line; while push works, the poll slows to a safety net."""
        if news is News.ARRIVED:
            self.wake("fetch")
            return
        before, self.push = self.push, news
        self.metrics.connection.labels("push").set(int(news is News.UP))
        schedule = self.settings.schedule
        if news is News.UP:
            self._poll_every(schedule.fetch_every_while_pushed)
            again = " working again:" if before is News.DOWN else ""
            log.info(
                "push:%s %s; polling every %s as a safety net",
                again,
                detail,
                format_duration(schedule.fetch_every_while_pushed),
            )
            self.jobs.resume_at.pop("fetch", None)  # the server answers again: no need to wait
            self.wake("fetch")  # what arrived while push was down or starting
            return
        self._poll_every(schedule.fetch_every)
        every = format_duration(schedule.fetch_every)
        if news is News.DOWN and before is not News.DOWN:
            log.warning("push: %s; polling every %s until it is back", detail, every)
        elif news is News.UNAVAILABLE:
            log.info("push: %s; polling every %s", detail, every)

    def _poll_every(self, interval: timedelta) -> None:
        """A new interval for the fetch; a run already due sooner (a wake) keeps its time."""
        if interval == self.polling_every or self.stop.is_set():
            return
        self.polling_every = interval
        due = self.scheduler.get_job("fetch").next_run_time
        job = self.scheduler.reschedule_job(
            "fetch", trigger="interval", seconds=interval.total_seconds()
        )
        if due is not None and job.next_run_time is not None and due < job.next_run_time:
            self.scheduler.modify_job("fetch", next_run_time=due)

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
            if settings.metrics.address:
                self._serve_metrics(settings.metrics.address)
            scheduler.start()
            pushing = None
            if settings.mailbox.push:
                pushing = asyncio.create_task(self._push())
            log.info(
                "intake running: mailbox %s, outbound %s, database %s",
                settings.mailbox.kind,
                settings.outbound.kind,
                settings.database.url.split("://", 1)[0],
            )
            self.systemd.ready("running")
            try:
                await self.stop.wait()
            finally:
                await self.jobs.finish()
                if pushing is not None:
                    await pushing
                await self.outbound.close()
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)
        log.info("intake stopped")

    def _serve_metrics(self, address: tuple[str, int]) -> None:
        try:
            self.metrics.serve(address)
        except OSError as exc:
            listen = self.settings.metrics.listen
            raise IntakeError(f"metrics.listen {listen}: {exc.strerror or exc}") from None
        log.info("metrics on http://%s/metrics", self.settings.metrics.listen)

    def _on_signal(self, signum: int) -> None:
        log.info("received %s: finishing the message in hand", signal.Signals(signum).name)
        self.systemd.stopping()
        self.stop.set()
