"""Crash safety: the daemon (`intake run`) killed with SIGKILL at random moments, again and
again, on a backlog in a real Dovecot, delivering to a real SMTP server; then one last
`intake poll --once` finishes the work.

Whatever the moment of each kill, nothing is lost and nothing is made twice. The only duplicates
allowed are deliveries the SMTP server accepted before we recorded them; they are counted and
printed (run with -s), and bounded by the outbox's recording window.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from intake.outbox.deliver import SENT_BACKLOG_MAX
from tests.conftest import IMAP_PASSWORD_ENV
from tests.servers import DEFAULT_PASSWORD, Dovecot, SmtpSink
from tests.support import make_mail, write_settings

BACKLOG = 300
KILLS = 24
MACHINE_MAIL = {7, 50, 123, 201}  # auto-replies mixed into the backlog: never answered


def _backlog() -> list[bytes]:
    mails = []
    for n in range(BACKLOG):
        headers = {"Auto-Submitted": "auto-replied"} if n in MACHINE_MAIL else {}
        mails.append(
            make_mail(
                sender=f"Reporter {n} <reporter{n}@example.net>",
                body=f"Report number {n}. " + "details " * (50 + n % 200),
                message_id=f"<crash-{n}@example.net>",
                headers=headers,
            )
        )
    return mails


def _intake(config: Path, command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "intake", "--config", str(config), command],
        env={**os.environ, IMAP_PASSWORD_ENV: DEFAULT_PASSWORD},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a crash takes the whole process group, parse worker included
    )


def _rows(database: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(sql).fetchall()


def test_random_sigkills_lose_nothing_and_make_nothing_twice(
    dovecot: Dovecot, sink: SmtpSink, folder: str, imap_config: dict[str, Any], tmp_path: Path
) -> None:
    imap_config["mailbox"].update(batch_size=25, first_run_limit=0)
    imap_config["schedule"] = {"fetch_every": "1s", "process_every": "1s", "deliver_every": "1s"}
    config = write_settings(tmp_path, imap_config)
    dovecot.append_many(_backlog(), folder=folder)
    rng = random.Random(20261121)

    kills = 0
    deadline = time.monotonic() + 240
    while kills < KILLS:
        assert time.monotonic() < deadline, f"only {kills} kills in time"
        run = _intake(config, "run")
        time.sleep(rng.uniform(0.05, 1.5))
        assert run.poll() is None, "the daemon runs until it is killed"
        os.killpg(run.pid, signal.SIGKILL)
        kills += 1
        run.wait(timeout=30)
    final = _intake(config, "poll")
    assert final.wait(timeout=180) == 0

    database = tmp_path / "intake.sqlite3"
    stored = _rows(database, "SELECT message_id, COUNT(*) FROM inbound_message GROUP BY message_id")
    assert len(stored) == BACKLOG, "every message stored"
    assert all(count == 1 for _, count in stored), "every message stored once"
    states = dict(_rows(database, "SELECT state, COUNT(*) FROM inbound_message GROUP BY state"))
    assert states == {"done": BACKLOG}, "every message processed"
    tickets = _rows(database, "SELECT reporter_email, COUNT(*) FROM ticket GROUP BY reporter_email")
    assert len(tickets) == BACKLOG - len(MACHINE_MAIL), "one case per report"
    assert all(count == 1 for _, count in tickets), "no case made twice"
    assert dovecot.uids(folder) == [], "nothing left in the inbox"
    assert len(dovecot.fetch_all(f"{folder}/Processed")) == BACKLOG, "nothing deleted"
    unsent = _rows(database, "SELECT COUNT(*) FROM outbound_message WHERE state != 'sent'")
    assert unsent == [(0,)], "every acknowledgement and notice delivered"

    deliveries = Counter(message.parsed()["Message-ID"] for message in sink.messages)
    queued = {row[0] for row in _rows(database, "SELECT message_id FROM outbound_message")}
    assert set(deliveries) == queued, "what reached the server is exactly what was queued"
    duplicates = sum(count - 1 for count in deliveries.values())
    machine_senders = {f"reporter{n}@example.net" for n in MACHINE_MAIL}
    answered = {rcpt for message in sink.messages for rcpt in message.rcpt_tos}
    assert not answered & machine_senders, "no reply to machine mail"
    assert duplicates <= kills * SENT_BACKLOG_MAX
    print(
        f"\ncrash safety: {kills} SIGKILLs, {BACKLOG} messages, 0 lost, 0 duplicate cases,"
        f" {duplicates} duplicate deliveries of {len(queued)} emails"
    )
