"""The IMAP source against a real Dovecot: store first, then move; never delete; never twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from intake.errors import MailboxError
from intake.runtime.cycle import poll_once, running
from intake.settings.schema import Settings
from intake.store.models import InboundMessage, MailboxState, OutboundMessage, Ticket
from intake.transport.fetch import fetch_once
from intake.transport.mailbox.imap import ImapMailbox
from tests.servers import Dovecot, SmtpSink
from tests.support import make_mail, settings_from


async def test_the_same_cycle_run_twice_creates_nothing_new(
    imap_db: Settings, dovecot: Dovecot, sink: SmtpSink, folder: str
) -> None:
    dovecot.append_many([make_mail(), make_mail(sender="Kim <kim@example.net>")], folder=folder)
    first = await poll_once(imap_db)
    second = await poll_once(imap_db)
    assert (first.fetch.stored, first.process.processed, first.deliver.sent) == (2, 2, 4)
    assert (second.fetch.stored, second.process.processed, second.deliver.sent) == (0, 0, 0)
    assert await Ticket.all().count() == 2
    assert await OutboundMessage.all().count() == 4
    assert len(sink.messages) == 4


async def test_the_same_message_appended_again_is_stored_once(
    imap_db: Settings, dovecot: Dovecot, folder: str
) -> None:
    raw = make_mail()
    dovecot.append(raw, folder=folder)
    await poll_once(imap_db)
    dovecot.append(raw, folder=folder)
    stats = await fetch_once(imap_db)
    assert (stats.stored, stats.duplicates, stats.moved) == (0, 1, 1)
    assert await InboundMessage.all().count() == 1
    assert len(dovecot.fetch_all(f"{folder}/Processed")) == 2  # moved, never deleted


async def test_a_crash_after_the_store_and_before_the_move_creates_no_duplicate(
    imap_db: Settings, dovecot: Dovecot, folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dovecot.append_many([make_mail(), make_mail()], folder=folder)

    def crash(self: ImapMailbox, keys: list[Any]) -> None:
        raise MailboxError("connection lost before MOVE")

    with monkeypatch.context() as patch:
        patch.setattr(ImapMailbox, "mark_processed", crash)
        with pytest.raises(MailboxError):
            await fetch_once(imap_db)
    assert await InboundMessage.all().count() == 2
    assert len(dovecot.uids(folder)) == 2  # still in the inbox: nothing lost

    stats = await fetch_once(imap_db)
    assert (stats.stored, stats.moved) == (0, 2)
    assert await InboundMessage.all().count() == 2
    assert dovecot.uids(folder) == []
    assert len(dovecot.fetch_all(f"{folder}/Processed")) == 2


async def test_the_processed_folder_is_created_when_missing(
    imap_db: Settings, dovecot: Dovecot, folder: str
) -> None:
    assert f"{folder}/Processed" not in dovecot.folders()
    dovecot.append(make_mail(), folder=folder)
    await fetch_once(imap_db)
    assert f"{folder}/Processed" in dovecot.folders()


async def test_mail_stays_unread_and_byte_identical(
    imap_db: Settings, dovecot: Dovecot, folder: str
) -> None:
    raw = make_mail(body="caf\u00e9 \u2014 r\u00e9sum\u00e9")
    dovecot.append(raw, folder=folder)
    await fetch_once(imap_db)
    with dovecot.session() as client:
        client.select_folder(f"{folder}/Processed")
        flags = client.get_flags(client.search(["ALL"]))
    assert all(b"\\Seen" not in value for value in flags.values())
    stored = await InboundMessage.get()
    assert stored.raw_bytes.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
    state = await MailboxState.get()
    assert state.uidvalidity == dovecot.uidvalidity(folder)
    assert state.last_uid >= 1


async def test_a_new_uidvalidity_yields_no_duplicates(
    imap_db: Settings, dovecot: Dovecot, folder: str
) -> None:
    raw = make_mail()
    dovecot.append(raw, folder=folder)
    await fetch_once(imap_db)
    dovecot.recreate_folder(folder)
    dovecot.append(raw, folder=folder)  # the same message again, under a new UIDVALIDITY
    dovecot.append(make_mail(), folder=folder)
    stats = await fetch_once(imap_db)
    assert (stats.stored, stats.duplicates) == (1, 1)
    assert await InboundMessage.all().count() == 2


async def test_without_move_it_copies_and_expunges_only_those_uids(
    tmp_path_factory: pytest.TempPathFactory,
    imap_config: dict[str, Any],
    tmp_path: Path,
    folder: str,
) -> None:
    with Dovecot(tmp_path_factory.mktemp("nomove"), advertise_move=False) as server:
        with server.session() as client:
            assert b"MOVE" not in client.capabilities()
        server.create_folder(folder)
        server.append(make_mail(), folder=folder)
        server.append(make_mail(), folder=folder)
        imap_config["mailbox"].update(port=server.port, batch_size=1)
        settings = settings_from(tmp_path, imap_config)
        async with running(settings):
            # Another client has flagged the second message \Deleted. A plain EXPUNGE after the
            # first batch would destroy it before it is stored; UID EXPUNGE of our UID does not.
            with server.session() as client:
                client.select_folder(folder)
                client.add_flags([server.uids(folder)[1]], [b"\\Deleted"])
            stats = await fetch_once(settings)
        assert (stats.stored, stats.moved) == (2, 2)
        assert server.uids(folder) == []
        assert len(server.fetch_all(f"{folder}/Processed")) == 2


@pytest.mark.parametrize("security", ["ssl", "starttls"])
async def test_tls_connections_verify_the_server_certificate(
    dovecot: Dovecot, imap_config: dict[str, Any], tmp_path: Path, folder: str, security: str
) -> None:
    assert dovecot.cert_path is not None and dovecot.ssl_port is not None
    imap_config["mailbox"].update(
        security=security,
        port=dovecot.ssl_port if security == "ssl" else dovecot.port,
        ca_file=str(dovecot.cert_path),
    )
    settings = settings_from(tmp_path, imap_config)
    dovecot.append(make_mail(), folder=folder)
    async with running(settings):
        assert (await fetch_once(settings)).stored == 1

    imap_config["mailbox"].pop("ca_file")  # the system's trust store does not know this cert
    untrusted = settings_from(tmp_path, imap_config)
    async with running(untrusted):
        with pytest.raises(MailboxError, match="CERTIFICATE_VERIFY_FAILED"):
            await fetch_once(untrusted)


async def test_a_wrong_password_is_one_clear_error(
    imap_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTAKE_TEST_IMAP_PASSWORD", "wrong")
    settings = settings_from(tmp_path, imap_config)
    async with running(settings):
        with pytest.raises(MailboxError, match="login failed") as caught:
            await fetch_once(settings)
    assert "\n" not in str(caught.value)
