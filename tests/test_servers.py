"""Checks for the throwaway test servers in tests/servers/.

Nothing here is skipped: a missing binary (dovecot, initdb, openssl) is a failure, because every
later integration test depends on these servers.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import imapclient
import pytest

from tests.servers import (
    DEFAULT_USER,
    CapturedMessage,
    Dovecot,
    Postgres,
    SmtpSink,
    free_port,
    make_self_signed_cert,
)

# CRLF line endings (what IMAP returns), 8-bit bytes and a long line: must come back unchanged.
RAW = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: info@example.org\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9?=\r\n"
    b"Message-ID: <roundtrip-1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"caf\xe9 cr\xe8me br\xfbl\xe9e\r\n" + b"x" * 900 + b"\r\n.\r\n..leading dots\r\n"
)


def make_raw(i: int) -> bytes:
    return (
        f"From: sender{i}@example.com\r\nTo: info@example.org\r\nSubject: message {i}\r\n"
        f"Message-ID: <m{i}@example.com>\r\n\r\nbody {i}\r\n"
    ).encode()


def make_message(subject: str = "hello", to: str = "bob@example.net") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "intake@example.org"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Thanks, we got your report.\n")
    return msg


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    with Dovecot(tmp_path_factory.mktemp("dovecot")) as server:
        yield server


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed_cert(tmp_path_factory.mktemp("cert"))


# --- helpers ------------------------------------------------------------------------------------


def test_free_port_returns_distinct_bindable_ports() -> None:
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == 20
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))


def _tls_handshake(cert: Path, key: Path, server_hostname: str) -> None:
    """Handshake over a socketpair: server uses cert/key, client verifies with cafile=cert."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    left, right = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(right, server_side=True) as tls:
                tls.sendall(b"ok")
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(left, server_hostname=server_hostname) as tls:
            assert tls.recv(2) == b"ok"
    finally:
        thread.join(5)
    assert not errors


def test_self_signed_cert_verifies_for_ip_and_localhost(tmp_path: Path) -> None:
    cert, key = make_self_signed_cert(tmp_path)
    assert cert.exists() and key.exists()
    _tls_handshake(cert, key, "127.0.0.1")
    _tls_handshake(cert, key, "localhost")
    with pytest.raises(ssl.SSLCertVerificationError):
        _tls_handshake(cert, key, "example.com")


# --- Dovecot ------------------------------------------------------------------------------------


def test_dovecot_starts_and_logs_in(dovecot: Dovecot) -> None:
    assert dovecot.running
    assert dovecot.host == "127.0.0.1"
    assert dovecot.ssl_port is None and dovecot.cert_path is None
    imap = dovecot.client()
    try:
        assert imap.has_capability("MOVE")
        assert imap.has_capability("UIDPLUS")
        assert imap.has_capability("IDLE")
    finally:
        imap.logout()
    bad = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=5)
    started = time.monotonic()
    with pytest.raises(imapclient.exceptions.LoginError):
        bad.login(DEFAULT_USER, "wrong")
    assert time.monotonic() - started < 4  # refused, not left to time out (5 s); room for load
    bad.shutdown()


def test_dovecot_append_round_trips_bytes(dovecot: Dovecot) -> None:
    dovecot.recreate_folder("RoundTrip")
    dovecot.append(RAW, folder="RoundTrip")
    assert dovecot.append_many((make_raw(i) for i in range(50)), folder="RoundTrip") == 50
    uids = dovecot.uids("RoundTrip")
    assert uids == list(range(uids[0], uids[0] + 51))
    fetched = dovecot.fetch_all("RoundTrip")
    assert fetched[0] == RAW
    assert fetched[1:] == [make_raw(i) for i in range(50)]
    # BODY.PEEK[] must not have set \Seen
    with dovecot.session() as imap:
        imap.select_folder("RoundTrip", readonly=True)
        assert imap.search("SEEN") == []


def test_dovecot_slash_separator_and_no_autocreated_folders(dovecot: Dovecot) -> None:
    assert "Intake/Processed" not in dovecot.folders()
    with dovecot.session() as imap:
        assert imap.namespace().personal[0][1] == "/"
        imap.create_folder("Intake/Processed")
        imap.select_folder("INBOX")
    dovecot.append(make_raw(1), folder="Intake/Processed")
    assert "Intake/Processed" in dovecot.folders()
    assert len(dovecot.uids("Intake/Processed")) == 1


def test_dovecot_move_can_be_hidden(tmp_path: Path) -> None:
    with Dovecot(tmp_path, advertise_move=False) as server:
        imap = server.client()
        try:
            assert not imap.has_capability("MOVE")
            assert imap.has_capability("UIDPLUS")
            assert imap.has_capability("IDLE")
            # and the server's own CAPABILITY answer agrees (not only imapclient's cache)
            imap._cached_capabilities = None  # force a fresh CAPABILITY command
            assert b"MOVE" not in imap.capabilities()
        finally:
            imap.logout()


def test_dovecot_tls_and_starttls(tmp_path: Path) -> None:
    with Dovecot(tmp_path, tls=True) as server:
        assert server.ssl_port is not None and server.cert_path is not None
        context = ssl.create_default_context(cafile=str(server.cert_path))
        imaps = imapclient.IMAPClient(
            server.host, port=server.ssl_port, ssl=True, ssl_context=context, timeout=5
        )
        imaps.login(DEFAULT_USER, "secret")
        imaps.select_folder("INBOX")
        imaps.logout()

        plain = imapclient.IMAPClient(server.host, port=server.port, ssl=False, timeout=5)
        assert plain.has_capability("STARTTLS")
        plain.starttls(context)
        plain.login(DEFAULT_USER, "secret")
        plain.select_folder("INBOX")
        plain.logout()


def test_dovecot_restart_keeps_mail_and_ports() -> None:
    # A world-readable directory: the server lives in it directly (no /tmp fallback).
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)
        with Dovecot(Path(tmp)) as server:
            assert server.root.parent == Path(tmp)
            server.append_many([make_raw(1), make_raw(2)])
            before = (server.port, server.uids(), server.fetch_all())
            server.restart()
            assert (server.port, server.uids(), server.fetch_all()) == before


def test_dovecot_start_failure_reports_log(tmp_path: Path) -> None:
    server = Dovecot(tmp_path)
    try:
        server.start()
        server.stop()
        with socket.socket() as blocker:
            blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            blocker.bind((server.host, server.port))
            blocker.listen()
            with pytest.raises(RuntimeError, match="Address already in use"):
                server.start()
        assert not server.running
    finally:
        server.close()


def test_dovecot_recreate_folder_changes_uidvalidity(dovecot: Dovecot) -> None:
    dovecot.recreate_folder("Recreated")
    dovecot.append(make_raw(1), folder="Recreated")
    before = dovecot.uidvalidity("Recreated")
    dovecot.recreate_folder("Recreated")
    assert dovecot.uids("Recreated") == []
    assert dovecot.uidvalidity("Recreated") != before

    dovecot.append(make_raw(2))
    inbox_before = dovecot.uidvalidity("INBOX")
    dovecot.recreate_folder("INBOX")
    assert dovecot.uids("INBOX") == []
    assert dovecot.uidvalidity("INBOX") != inbox_before
    dovecot.append(make_raw(3))
    assert dovecot.fetch_all() == [make_raw(3)]


def test_two_dovecots_run_side_by_side(tmp_path: Path) -> None:
    with (
        Dovecot(tmp_path, users={"a@example.org": "pa"}) as one,
        Dovecot(tmp_path, users={"b@example.org": "pb"}) as two,
    ):
        assert one.port != two.port and one.root != two.root
        one.append(make_raw(1))
        two.append_many([make_raw(2), make_raw(3)])
        assert one.fetch_all(user="a@example.org") == [make_raw(1)]
        assert two.fetch_all() == [make_raw(2), make_raw(3)]


# --- SMTP sink ----------------------------------------------------------------------------------


def test_smtp_sink_captures_a_message() -> None:
    with SmtpSink() as sink:
        msg = make_message("captured")
        asyncio.run(aiosmtplib.send(msg, hostname=sink.host, port=sink.port, timeout=5))
        [captured] = sink.wait_for(1)
        assert isinstance(captured, CapturedMessage)
        assert captured.mail_from == "intake@example.org"
        assert captured.rcpt_tos == ["bob@example.net"]
        assert captured.parsed()["Subject"] == "captured"
        assert captured.parsed().get_content() == "Thanks, we got your report.\n"
        assert not captured.tls
        assert sink.connections == 1
        sink.clear()
        assert sink.messages == [] and sink.connections == 0
        with pytest.raises(TimeoutError):
            sink.wait_for(1, timeout=0.05)


def test_smtp_sink_counts_one_connection_for_three_messages() -> None:
    async def send_three(sink: SmtpSink) -> None:
        async with aiosmtplib.SMTP(hostname=sink.host, port=sink.port, timeout=5) as smtp:
            for i in range(3):
                await smtp.send_message(make_message(f"reuse {i}"))

    with SmtpSink() as sink:
        asyncio.run(send_three(sink))
        assert [m.parsed()["Subject"] for m in sink.wait_for(3)] == [
            "reuse 0",
            "reuse 1",
            "reuse 2",
        ]
        assert sink.connections == 1


def test_smtp_sink_fail_next() -> None:
    async def send(sink: SmtpSink, subject: str) -> None:
        await aiosmtplib.send(make_message(subject), hostname=sink.host, port=sink.port, timeout=5)

    with SmtpSink() as sink:
        sink.fail_next(1)
        with pytest.raises(aiosmtplib.SMTPResponseException) as info:
            asyncio.run(send(sink, "first"))
        assert info.value.code == 451
        asyncio.run(send(sink, "second"))
        assert [m.parsed()["Subject"] for m in sink.wait_for(1)] == ["second"]

        sink.fail_next(1, "550 5.1.1 No such user", at="rcpt")
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            asyncio.run(send(sink, "third"))
        assert len(sink.messages) == 1


def test_smtp_sink_auth() -> None:
    with SmtpSink(auth={"relay": "pw"}) as sink:

        async def send(password: str | None) -> None:
            await aiosmtplib.send(
                make_message("auth"),
                hostname=sink.host,
                port=sink.port,
                username="relay" if password else None,
                password=password,
                timeout=5,
            )

        started = time.monotonic()
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as info:
            asyncio.run(send("wrong"))
        assert info.value.code == 535
        assert time.monotonic() - started < 4  # refused, not left to time out (5 s); room for load
        with pytest.raises(aiosmtplib.SMTPResponseException) as unauthenticated:
            asyncio.run(send(None))
        assert unauthenticated.value.code == 530
        asyncio.run(send("pw"))
        [captured] = sink.wait_for(1)
        assert captured.login == "relay"


def test_smtp_sink_starttls_and_implicit_tls(cert: tuple[Path, Path]) -> None:
    context = ssl.create_default_context(cafile=str(cert[0]))
    with SmtpSink(tls_cert=cert, auth={"relay": "pw"}) as sink:
        # aiosmtplib upgrades with STARTTLS by itself when it is offered, and verifies the cert
        asyncio.run(
            aiosmtplib.send(
                make_message("starttls"),
                hostname=sink.host,
                port=sink.port,
                tls_context=context,
                username="relay",
                password="pw",
                timeout=5,
            )
        )
        assert sink.wait_for(1)[0].tls
    with SmtpSink(tls_cert=cert, implicit_tls=True) as sink:
        asyncio.run(
            aiosmtplib.send(
                make_message("implicit"),
                hostname=sink.host,
                port=sink.port,
                use_tls=True,
                tls_context=context,
                timeout=5,
            )
        )
        [captured] = sink.wait_for(1)
        assert captured.tls and captured.parsed()["Subject"] == "implicit"
        assert sink.connections == 1


# --- PostgreSQL ---------------------------------------------------------------------------------


def test_postgres_starts_and_answers(tmp_path: Path) -> None:
    assert Postgres.available(), "PostgreSQL binaries (or runuser) missing"
    with Postgres(tmp_path) as pg:
        assert pg.psql("SELECT 1") == "1"
        url = pg.create_database("intake_test")
        assert url == f"postgres://postgres@127.0.0.1:{pg.port}/intake_test"

        async def select_one() -> int:
            import asyncpg  # type: ignore[import-untyped]

            conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
            try:
                return int(await conn.fetchval("SELECT 1"))
            finally:
                await conn.close()

        assert asyncio.run(select_one()) == 1
    if os.geteuid() == 0:
        # pytest's tmp_path is private to root, so the cluster lived in a /tmp dir, now removed
        assert not pg.root.exists()
        assert not any(tmp_path.iterdir())
