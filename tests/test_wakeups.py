"""How the stages wake each other: a signal after each commit instead of polling, no wake-up
lost when it comes while a job runs, and an outbound connection kept open between runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from intake.errors import SettingsError
from intake.runtime.daemon import Daemon
from intake.settings.schema import Settings
from intake.settings.types import format_duration, parse_duration
from intake.store.models import OutboundMessage
from intake.transport.kept_open import KeptOpen
from intake.transport.stages import Upstream


async def test_a_stage_waits_for_a_commit_and_misses_none_made_while_it_looked() -> None:
    upstream = Upstream()
    assert upstream.look() is False  # not ended: finding nothing means "wait"
    upstream.more()  # a commit lands after the look, before the wait
    await asyncio.wait_for(upstream.wait(), timeout=5)  # so the wait returns at once
    upstream.look()
    waiting = asyncio.create_task(upstream.wait())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # nothing new: it waits (no timer wakes it)
    upstream.end()
    await asyncio.wait_for(waiting, timeout=5)
    assert upstream.look() is True
    assert Upstream.none().look() is True


def test_durations_are_written_back_as_in_the_settings_file() -> None:
    for text in ("1s", "90s", "5m", "36h", "3d", "2w"):
        assert format_duration(parse_duration(text)) == text
    assert format_duration(timedelta(seconds=0.5)) == "0.5s"


def test_idle_renewal_must_stay_inside_what_rfc_2177_allows(
    base_config: dict[str, Any], make_settings: Any
) -> None:
    base_config["mailbox"]["idle_renew"] = "30m"
    with pytest.raises(SettingsError, match=r"idle_renew.*at most 29m"):
        make_settings(base_config)


async def test_a_wake_during_a_run_makes_the_job_run_again(db: Settings) -> None:
    daemon = Daemon(db)
    runs: list[datetime] = []
    release = asyncio.Event()

    async def work() -> None:
        runs.append(datetime.now(UTC))
        if len(runs) == 1:
            await release.wait()

    daemon.jobs.add("probe", timedelta(hours=1), work)
    daemon.scheduler.start()
    try:
        while not runs:
            await asyncio.sleep(0.01)
        daemon.wake("probe")  # work committed while the job is busy
        release.set()
        for _ in range(500):
            if len(runs) == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        daemon.scheduler.shutdown(wait=False)
    assert len(runs) == 2, "the wake that came during the first run was kept"


class CountingTransport:
    name = "counting"

    def __init__(self) -> None:
        self.opened = self.closed = 0
        self.connected = False

    async def open(self) -> None:
        if not self.connected:
            self.opened += 1
            self.connected = True

    async def send(self, row: OutboundMessage) -> None:
        return None

    async def close(self) -> None:
        if self.connected:
            self.closed += 1
            self.connected = False


async def test_the_outbound_connection_stays_open_between_runs_then_closes_when_idle() -> None:
    transport = CountingTransport()
    kept = KeptOpen(transport, timedelta(milliseconds=50))
    for _ in range(3):  # three delivery runs in quick succession: one connection
        used = await kept.take()
        await used.open()
        kept.release()
    assert (transport.opened, transport.closed) == (1, 0)
    await asyncio.sleep(0.3)  # idle for longer than keep_open
    assert (transport.opened, transport.closed) == (1, 1)
    await (await kept.take()).open()  # the next run opens a new one
    await kept.close()
    assert (transport.opened, transport.closed) == (2, 2)
