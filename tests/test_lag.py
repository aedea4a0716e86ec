"""Lag made visible: how long each report waited from its arrival in the mailbox to its
acknowledgement, in `intake inbound`, in the log lines, and as a median and 95th percentile in
`intake stats`; and the daemon's warning when mail waits too long."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from intake.cli import views
from intake.conduct.stats import case_stats, text_report
from intake.runtime.cycle import poll_once
from intake.runtime.lag import LagWatch
from intake.settings.schema import Settings
from intake.store.models import InboundMessage
from tests.servers import Dovecot
from tests.support import make_mail, stored_inbound

AGES = (100, 200, 300, 400, 500)  # seconds since each report reached the Maildir


def _deliver_aged(settings: Settings, age: float, name: str) -> None:
    """A report the MTA put into new/ `age` seconds ago (a Maildir file's mtime is its arrival)."""
    assert settings.mailbox.path is not None
    new = settings.mailbox.path / "new"
    new.mkdir(parents=True, exist_ok=True)
    path = new / name
    path.write_bytes(make_mail(sender=f"{name}@example.net"))
    then = time.time() - age
    os.utime(path, (then, then))


async def test_each_message_shows_how_long_after_its_arrival_it_was_acknowledged(
    db: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    _deliver_aged(db, 90, "waited")
    with caplog.at_level(logging.INFO):
        await poll_once(db)
    [row] = await views.inbound(None)
    assert 90 <= row["acknowledged_after_seconds"] < 150
    arrived = datetime.fromisoformat(row["arrived_at"])
    assert abs((datetime.now(UTC) - arrived).total_seconds() - 90) < 60
    outcome = next(r.message for r in caplog.records if "-> ticket_created" in r.message)
    assert "after arrival" in outcome
    sent = next(r.message for r in caplog.records if "(acknowledgement) sent" in r.message)
    assert f"after inbound {row['id']} arrived" in sent


async def test_stats_give_the_median_and_95th_percentile_wait(db: Settings) -> None:
    for age in AGES:
        _deliver_aged(db, age, f"r{age}")
    await poll_once(db)
    wait = (await case_stats(db, None, None))["arrival_to_acknowledgement"]
    assert wait["cases"] == {"count": len(AGES)}
    assert 300 <= wait["median_seconds"] < 360  # the middle one, plus the time taken here
    assert 500 <= wait["p95_seconds"] < 560  # nearest rank: the largest of five
    report = text_report(await case_stats(db, None, None))
    [(_title, columns, rows)] = [table for table in report.tables if "arrival" in table[0]]
    assert columns == ["median", "95th percentile", "cases"]
    assert rows[0][2] == str(len(AGES)) and rows[0][0].endswith("minutes")


async def test_the_wait_over_too_few_cases_is_not_shown(db: Settings) -> None:
    _deliver_aged(db, 10, "alone")
    await poll_once(db)
    wait = (await case_stats(db, None, None))["arrival_to_acknowledgement"]
    assert wait["median_seconds"] is None and wait["suppressed"] is True
    assert "p95_seconds" not in wait


async def test_imap_arrival_is_the_servers_internaldate(
    imap_db: Settings, dovecot: Dovecot, folder: str
) -> None:
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with dovecot.session() as imap:
        imap.append(folder, make_mail(), msg_time=hour_ago)
    await poll_once(imap_db)
    [row] = await InboundMessage.all()
    assert row.arrived_at is not None
    assert abs((row.arrived_at - hour_ago).total_seconds()) < 2  # INTERNALDATE: to the second
    [listed] = await views.inbound(None)
    assert listed["acknowledged_after_seconds"] >= 3600


async def test_the_daemon_warns_once_when_mail_waits_and_once_when_it_flows_again(
    db: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    watch = LagWatch(timedelta(minutes=15), started=now)
    assert await watch.problems(now) == []
    waiting = await stored_inbound(make_mail())
    await InboundMessage.filter(id=waiting.id).update(arrived_at=now - timedelta(minutes=20))
    later = now + timedelta(minutes=16)
    with caplog.at_level(logging.INFO, logger="intake.daemon"):
        await watch.check(later, push="down")
        await watch.check(later, push="down")
        [stuck, silent] = await watch.problems(later)
        assert f"inbound {waiting.id} arrived" in stuck
        assert "no successful fetch for 16 minutes" in silent
        await InboundMessage.filter(id=waiting.id).update(state="done")
        watch.fetched(later)
        await watch.check(later, push="up")
        await watch.check(later, push="up")
    lines = [record.message for record in caplog.records]
    assert len([line for line in lines if line.startswith("mail is waiting")]) == 1
    assert "(push: down)" in lines[0]
    assert lines.count("mail is flowing again") == 1
