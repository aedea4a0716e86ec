"""Crash safety: the daemon (`intake run`) killed with SIGKILL again and again, on a backlog in a
real Dovecot, delivering to a real SMTP server; then one last `intake poll --once` finishes the
work. Each kill waits until the daemon is seen at work in the earliest stage with work left
(storing, processing, delivering), then strikes at a random moment within 0.3 s: kills soon
after start-up alone would test nothing but start-up.

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

from intake.transport.delivery import SENT_BACKLOG_MAX
from tests.servers import DEFAULT_PASSWORD, Dovecot, SmtpSink
from tests.support import IMAP_PASSWORD_ENV, make_mail, write_settings

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


# What each kind of kill waits to see move before it strikes, so that kills land in every stage.
PROGRESS = {
    "stored": "SELECT COUNT(*) FROM inbound_message",
    "processed": "SELECT COUNT(*) FROM inbound_message WHERE state = 'done'",
    "sent": "SELECT COUNT(*) FROM outbound_message WHERE state = 'sent'",
}
LEFT = {  # how much of each stage's work is not done yet
    "stored": f"SELECT {BACKLOG} - COUNT(*) FROM inbound_message",
    "processed": "SELECT COUNT(*) FROM inbound_message WHERE state != 'done'",
    "sent": "SELECT COUNT(*) FROM outbound_message WHERE state != 'sent'",
}


def _count(database: Path, sql: str, default: int) -> int:
    try:
        return int(_rows(database, sql)[0][0])
    except sqlite3.Error:  # no database yet, or its tables not yet made
        return default


def _wait_for_progress(
    database: Path, stage: str, before: int, run: subprocess.Popen[bytes]
) -> bool:
    """Wait (up to 10 s) until the daemon has moved `stage` on; False when there was nothing
    left to do for it."""
    give_up = time.monotonic() + 10
    while time.monotonic() < give_up and run.poll() is None:
        if _count(database, PROGRESS[stage], 0) > before:
            return True
        time.sleep(0.02)
    return False


def test_random_sigkills_lose_nothing_and_make_nothing_twice(
    dovecot: Dovecot, sink: SmtpSink, folder: str, imap_config: dict[str, Any], tmp_path: Path
) -> None:
    imap_config["mailbox"].update(batch_size=25, first_run_limit=0)
    imap_config["schedule"] = {"fetch_every": "1s", "process_every": "1s", "deliver_every": "1s"}
    config = write_settings(tmp_path, imap_config)
    dovecot.append_many(_backlog(), folder=folder)
    rng = random.Random(20261121)

    database = tmp_path / "intake.sqlite3"
    kills = 0
    stages_hit: Counter[str] = Counter()
    deadline = time.monotonic() + 240
    while kills < KILLS:
        assert time.monotonic() < deadline, f"only {kills} kills in time"
        stages = [stage for stage in PROGRESS if _count(database, LEFT[stage], 1) > 0]
        if not stages:
            break  # all the work is done: further kills would test only start-up
        stage = stages[0]  # the earliest stage with work left: kills follow the work through
        before = _count(database, PROGRESS[stage], 0)
        run = _intake(config, "run")
        if _wait_for_progress(database, stage, before, run):  # the daemon is at work on it
            stages_hit[stage] += 1
        time.sleep(rng.uniform(0, 0.3))
        assert run.poll() is None, "the daemon runs until it is killed"
        os.killpg(run.pid, signal.SIGKILL)
        kills += 1
        run.wait(timeout=30)
    assert kills >= 8 and stages_hit["processed"] and stages_hit["sent"], (
        f"kills must land while the daemon processes and delivers, not only at start: {stages_hit}"
    )
    final = _intake(config, "poll")
    assert final.wait(timeout=180) == 0

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
        f"\ncrash safety: {kills} SIGKILLs ({dict(stages_hit)} while at work), {BACKLOG}"
        f" messages, 0 lost, 0 duplicate cases,"
        f" {duplicates} duplicate deliveries of {len(queued)} emails"
    )
