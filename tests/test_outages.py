"""Outages: the daemon stays up while IMAP or SMTP is down, says so once, and catches up."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import wait_until
from tests.servers import DEFAULT_PASSWORD, Dovecot, SmtpSink, free_port
from tests.support import IMAP_PASSWORD_ENV, make_mail, write_settings


def test_the_daemon_rides_out_imap_and_smtp_outages(
    tmp_path_factory: pytest.TempPathFactory, imap_config: dict[str, Any], tmp_path: Path
) -> None:
    with (
        Dovecot(tmp_path_factory.mktemp("outage-imap")) as imap,
        SmtpSink(port=free_port()) as smtp,
    ):
        imap_config["mailbox"].update(port=imap.port, folder="INBOX", processed_folder="Done")
        imap_config["outbound"].update(port=smtp.port)
        imap_config["schedule"] = {
            "fetch_every": "1s",
            "process_every": "1s",
            "deliver_every": "1s",
        }
        config = write_settings(tmp_path, imap_config)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "intake", "--config", str(config), "run"],
            env={**os.environ, IMAP_PASSWORD_ENV: DEFAULT_PASSWORD},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            imap.append(make_mail(sender="first@example.net"))
            wait_until(lambda: len(smtp.messages) >= 2, "the first case's two emails")

            imap.stop()  # the mailbox server goes away for a while
            time.sleep(5)
            assert daemon.poll() is None, "the daemon stays up"
            imap.start()
            imap.append(make_mail(sender="second@example.net"))
            wait_until(lambda: len(smtp.messages) >= 4, "mail that arrived after the IMAP outage")

            smtp.stop()  # now the SMTP server goes away
            imap.append(make_mail(sender="third@example.net"))
            time.sleep(5)
            assert daemon.poll() is None
            assert len(smtp.messages) == 4
            smtp.start()
            wait_until(lambda: len(smtp.messages) >= 6, "mail queued during the SMTP outage")
        finally:
            daemon.send_signal(signal.SIGTERM)
            _, stderr = daemon.communicate(timeout=60)

    assert daemon.returncode == 0, stderr
    assert "Traceback" not in stderr
    fetch_errors = [line for line in stderr.splitlines() if "ERROR intake.daemon: fetch:" in line]
    deliver_errors = [
        line for line in stderr.splitlines() if "ERROR intake.daemon: deliver:" in line
    ]
    assert 1 <= len(fetch_errors) <= 2, fetch_errors  # once (twice if the error text changed)
    assert 1 <= len(deliver_errors) <= 2, deliver_errors
    assert "fetch: working again" in stderr and "deliver: working again" in stderr
    recipients = sorted(rcpt for message in smtp.messages for rcpt in message.rcpt_tos)
    for sender in ("first@example.net", "second@example.net", "third@example.net"):
        assert recipients.count(sender) == 1, "each reporter acknowledged exactly once"


def _hold_database_lock(database: Path, seconds: float) -> threading.Thread:
    """Another process-like writer (a backup, a second daemon) holding SQLite's write lock."""
    ready = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(database, timeout=0, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        ready.set()
        time.sleep(seconds)
        connection.execute("ROLLBACK")
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait(10)
    return thread


def test_a_busy_database_delays_or_fails_a_cycle_and_loses_nothing(
    dovecot: Dovecot, sink: SmtpSink, folder: str, imap_config: dict[str, Any], tmp_path: Path
) -> None:
    config = write_settings(tmp_path, imap_config)
    database = tmp_path / "intake.sqlite3"
    env = {**os.environ, IMAP_PASSWORD_ENV: DEFAULT_PASSWORD}
    command = [sys.executable, "-m", "intake", "--config", str(config), "poll"]
    assert subprocess.run(command, env=env, timeout=60).returncode == 0  # creates the database

    dovecot.append(make_mail(sender="short@example.net"), folder=folder)
    holder = _hold_database_lock(database, 2)  # shorter than SQLite's 5 s busy wait
    short = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    holder.join()
    assert short.returncode == 0, short.stderr

    dovecot.append(make_mail(sender="long@example.net"), folder=folder)
    holder = _hold_database_lock(database, 8)  # longer: this cycle fails, clearly
    long = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    holder.join()
    assert long.returncode == 1
    assert "database is locked" in long.stderr and "Traceback" not in long.stderr
    assert len(dovecot.uids(folder)) == 1  # not stored, so not moved: still in the inbox

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    recipients = [rcpt for message in sink.messages for rcpt in message.rcpt_tos]
    assert recipients.count("short@example.net") == 1
    assert recipients.count("long@example.net") == 1
    assert dovecot.uids(folder) == []


def test_a_refused_login_is_reported_loudly_once_and_mailed_to_the_leads(
    dovecot: Dovecot, sink: SmtpSink, imap_config: dict[str, Any], tmp_path: Path
) -> None:
    imap_config["schedule"] = {"fetch_every": "1s", "process_every": "1s", "deliver_every": "1s"}
    imap_config["alerts"] = {"after_failures": 2}
    config = write_settings(tmp_path, imap_config)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "intake", "--config", str(config), "run"],
        env={**os.environ, IMAP_PASSWORD_ENV: "not-the-password"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: len(sink.messages) >= 1, "the alert email")
        time.sleep(7)  # more failed logins, backing off: no second email
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, stderr
    [alert] = sink.messages
    assert alert.rcpt_tos == ["alice@example.org"]  # the lead, not every member
    parsed = alert.parsed()
    assert parsed["Subject"] == "[Intake] Needs attention: the fetch job keeps failing"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert "login failed" in parsed.get_content()  # type: ignore[attr-defined]
    assert "not-the-password" not in alert.data.decode("utf-8", "replace")
    assert len([line for line in stderr.splitlines() if "CRITICAL" in line]) == 1
    assert len([line for line in stderr.splitlines() if "ERROR intake.daemon: fetch:" in line]) == 1
