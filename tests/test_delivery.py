"""Delivery from the outbox: one connection per batch, retries on 4xx, final state on 5xx."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from intake.errors import DeliveryError
from intake.runtime.cycle import running
from intake.settings.schema import Settings
from intake.store.models import OutboundMessage, OutboundState
from intake.transport.delivery import deliver_once
from intake.transport.transports import make_transport
from tests.servers import SmtpSink, free_port, make_self_signed_cert
from tests.support import base_settings, queue_acknowledgements, settings_from


async def test_a_batch_goes_over_one_reused_connection(imap_db: Settings, sink: SmtpSink) -> None:
    await queue_acknowledgements(imap_db, 5)
    before = sink.connections
    stats = await deliver_once(imap_db)
    assert stats.sent == 5
    assert len(sink.wait_for(5)) == 5
    assert sink.connections - before == 1
    assert await OutboundMessage.filter(state=OutboundState.SENT).count() == 5


async def test_the_daemons_kept_connection_serves_runs_until_the_server_drops_it(
    imap_db: Settings, sink: SmtpSink
) -> None:
    """The daemon keeps its SMTP session between delivery runs; when the server has timed it
    out meanwhile, the next email reconnects once and goes out, nothing deferred."""
    with SmtpSink(port=free_port(), idle_timeout=1) as impatient:
        settings = imap_db.model_copy(
            update={"outbound": imap_db.outbound.model_copy(update={"port": impatient.port})}
        )
        transport = make_transport(settings)
        try:
            for _ in range(2):  # two runs in quick succession: one session
                await queue_acknowledgements(settings, 1)
                assert (await deliver_once(settings, transport=transport)).sent == 1
            assert impatient.connections == 1
            await asyncio.sleep(2)  # the server drops the idle session
            await queue_acknowledgements(settings, 1)
            stats = await deliver_once(settings, transport=transport)
        finally:
            await transport.close()
        assert (stats.sent, stats.deferred) == (1, 0)
        assert impatient.connections == 2
        assert len(impatient.wait_for(3)) == 3


async def test_a_4xx_answer_is_retried_later_with_backoff(
    imap_db: Settings, sink: SmtpSink
) -> None:
    [row] = await queue_acknowledgements(imap_db, 1)
    sink.fail_next(1, "451 4.3.0 Try again later")
    stats = await deliver_once(imap_db)
    assert (stats.sent, stats.deferred) == (0, 1)
    await row.refresh_from_db()
    assert row.state == OutboundState.QUEUED
    assert row.attempts == 1
    assert row.last_error is not None and "451" in row.last_error
    assert row.next_attempt_at is not None and row.next_attempt_at > datetime.now(UTC)

    assert (await deliver_once(imap_db)).sent == 0  # not due yet
    await OutboundMessage.filter(id=row.id).update(
        next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert (await deliver_once(imap_db)).sent == 1
    await row.refresh_from_db()
    assert row.state == OutboundState.SENT
    assert len(sink.messages) == 1


async def test_a_5xx_answer_fails_the_message_with_the_servers_reply(
    imap_db: Settings, sink: SmtpSink
) -> None:
    first, second = await queue_acknowledgements(imap_db, 2)
    sink.fail_next(1, "550 5.1.1 No such user here")
    stats = await deliver_once(imap_db)
    assert (stats.sent, stats.failed) == (1, 1)
    await first.refresh_from_db()
    assert first.state == OutboundState.FAILED
    assert first.last_error == "550 5.1.1 No such user here"
    await second.refresh_from_db()
    assert second.state == OutboundState.SENT


async def test_a_server_that_is_down_is_one_clear_error_and_nothing_is_lost(
    imap_config: dict[str, Any], tmp_path: Path
) -> None:
    imap_config["outbound"]["port"] = free_port()
    settings = settings_from(tmp_path, imap_config)
    async with running(settings):
        await queue_acknowledgements(settings, 2)
        with pytest.raises(DeliveryError, match=r"smtp://127\.0\.0\.1:\d+"):
            await deliver_once(settings)
        assert await OutboundMessage.filter(state=OutboundState.QUEUED).count() == 2


@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_tls_and_authentication(
    imap_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, security: str
) -> None:
    cert = make_self_signed_cert(tmp_path / "tls")
    monkeypatch.setenv("INTAKE_TEST_SMTP_PASSWORD", "s3cret")
    with SmtpSink(
        auth={"info@example.org": "s3cret"}, tls_cert=cert, implicit_tls=security == "ssl"
    ) as server:
        imap_config["outbound"].update(
            host=server.host,
            port=server.port,
            security=security,
            username="info@example.org",
            password_env="INTAKE_TEST_SMTP_PASSWORD",
            ca_file=str(cert[0]),
        )
        settings = settings_from(tmp_path, imap_config)
        async with running(settings):
            await queue_acknowledgements(settings, 2)
            assert (await deliver_once(settings)).sent == 2
        received = server.wait_for(2)
        assert all(message.tls and message.login == "info@example.org" for message in received)


async def test_a_wrong_password_is_one_clear_error(
    imap_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTAKE_TEST_SMTP_PASSWORD", "wrong")
    with SmtpSink(auth={"info@example.org": "s3cret"}) as server:
        imap_config["outbound"].update(
            port=server.port, username="info@example.org", password_env="INTAKE_TEST_SMTP_PASSWORD"
        )
        settings = settings_from(tmp_path, imap_config)
        async with running(settings):
            await queue_acknowledgements(settings, 1)
            with pytest.raises(DeliveryError, match="login refused: 535"):
                await deliver_once(settings)


async def test_the_directory_transport_writes_each_message_once(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(base_settings(tmp_path))
    async with running(settings):
        rows = await queue_acknowledgements(settings, 3)
        assert (await deliver_once(settings)).sent == 3
        assert (await deliver_once(settings)).sent == 0
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert [f.name for f in files] == [f"{row.id:08d}-acknowledgement.eml" for row in rows]
    assert files[0].read_bytes() == rows[0].raw_bytes


async def test_a_refused_sender_stops_the_run_and_counts_against_no_message(
    imap_config: dict[str, Any], tmp_path: Path
) -> None:
    with SmtpSink(auth={"info@example.org": "s3cret"}) as server:  # we send without logging in
        imap_config["outbound"]["port"] = server.port
        settings = settings_from(tmp_path, imap_config)
        async with running(settings):
            rows = await queue_acknowledgements(settings, 2)
            with pytest.raises(DeliveryError, match="sender refused: 530"):
                await deliver_once(settings)
            for row in rows:
                await row.refresh_from_db()
                assert (row.state, row.attempts) == (OutboundState.QUEUED, 0)
        assert server.messages == []
