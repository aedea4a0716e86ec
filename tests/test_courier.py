"""The courier: SMTP in a process of its own, with delivery's claims and records in the parent."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from typing import Any

import pytest

from intake.runtime.courier import Courier, end_couriers, outbound_transport
from intake.runtime.cycle import poll_once
from intake.settings.schema import Settings
from intake.store.models import OutboundMessage, OutboundState
from intake.transport.delivery import deliver_once
from intake.transport.transports import DirectoryTransport
from tests.servers import Dovecot, SmtpSink
from tests.support import make_mail, queue_acknowledgements


async def test_smtp_goes_through_one_courier_for_the_life_of_the_database(
    imap_db: Settings, sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    courier = outbound_transport(imap_db)
    assert isinstance(courier, Courier)
    assert outbound_transport(imap_db) is courier
    await queue_acknowledgements(imap_db, 3)
    with caplog.at_level(logging.INFO, logger="intake"):
        stats = await deliver_once(imap_db, transport=courier)
        await courier.close()
    assert stats.sent == 3
    assert len(sink.wait_for(3)) == 3
    assert courier.pid is not None and courier.pid != os.getpid()
    assert await OutboundMessage.filter(state=OutboundState.SENT).count() == 3
    assert sum("sent to 1 recipient" in record.message for record in caplog.records) == 3
    end_couriers()
    assert outbound_transport(imap_db) is not courier


async def test_the_couriers_log_lines_reach_the_parents_handlers(
    imap_db: Settings, sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """A warning the transport logs in the courier (here: a recipient refused among several)
    is written by the parent, as if it had been logged there."""
    rows = await queue_acknowledgements(imap_db, 1)
    await OutboundMessage.filter(id=rows[0].id).update(
        recipients=["refused@example.net", "reporter1@example.net"]
    )
    sink.fail_next(1, "550 5.1.1 No such user here", at="rcpt")
    with caplog.at_level(logging.WARNING, logger="intake"):
        stats = await deliver_once(imap_db, transport=outbound_transport(imap_db))
    assert stats.sent == 1
    refused = [r for r in caplog.records if "some recipients refused" in r.message]
    assert len(refused) == 1 and refused[0].name == "intake.deliver"


async def test_a_courier_killed_between_runs_is_replaced(imap_db: Settings, sink: SmtpSink) -> None:
    courier = outbound_transport(imap_db)
    await queue_acknowledgements(imap_db, 2)
    assert (await deliver_once(imap_db, transport=courier)).sent == 2
    assert courier.pid is not None
    os.kill(courier.pid, signal.SIGKILL)
    await queue_acknowledgements(imap_db, 2)
    stats = await deliver_once(imap_db, transport=courier)  # opens through a new courier
    assert (stats.sent, stats.deferred) == (2, 0)
    assert await OutboundMessage.filter(state=OutboundState.SENT).count() == 4
    assert len(sink.wait_for(4)) == 4


async def test_the_servers_refusals_cross_as_the_transports_own_errors(
    imap_db: Settings, sink: SmtpSink
) -> None:
    await queue_acknowledgements(imap_db, 2)
    sink.fail_next(1, "550 5.1.1 No such user here")
    sink.fail_next(1, "451 4.3.0 Try again later")
    stats = await deliver_once(imap_db, transport=outbound_transport(imap_db))
    assert (stats.sent, stats.failed, stats.deferred) == (0, 1, 1)
    failed = await OutboundMessage.get(state=OutboundState.FAILED)
    assert failed.last_error is not None and "550" in failed.last_error


async def test_a_cycle_sends_through_the_courier(
    imap_db: Settings, sink: SmtpSink, dovecot: Dovecot, folder: str
) -> None:
    for n in range(3):
        dovecot.append(make_mail(sender=f"r{n}@example.net", subject=f"Report {n}"), folder)
    stats = await poll_once(imap_db)
    assert stats.process.processed == 3
    assert stats.deliver.sent == 6  # an acknowledgement and an assignment notice each
    assert len(sink.wait_for(6)) == 6


def test_other_transports_need_no_courier(
    make_settings: Callable[[dict[str, Any]], Settings], base_config: dict[str, Any]
) -> None:
    assert isinstance(outbound_transport(make_settings(base_config)), DirectoryTransport)
