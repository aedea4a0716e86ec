"""Several daemons on one PostgreSQL: they start together on an empty database, share a
backlog with a cron `intake poll` while one of them is killed and restarted, and send a
deadline reminder once. Real PostgreSQL, Dovecot and aiosmtpd; every daemon a real process."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from intake.runtime.cycle import running
from intake.store.models import TeamMember, Ticket
from intake.transport.delivery import SENT_BACKLOG_MAX
from tests.daemon import Daemon, running_daemon, start_daemon, wait_until
from tests.servers import DEFAULT_PASSWORD, Dovecot, Postgres, SmtpSink
from tests.support import IMAP_PASSWORD_ENV, REPO, make_mail, settings_from, write_settings

BACKLOG = 240
KILLS = 2
MIGRATIONS = REPO / "intake" / "store" / "migrations"
QUICK = {"fetch_every": "1s", "process_every": "1s", "deliver_every": "1s"}


def _count(postgres: Postgres, database: str, sql: str) -> int:
    return int(postgres.psql(sql, database=database) or 0)


def test_daemons_and_commands_started_together_on_an_empty_database_all_come_up(
    postgres: Postgres, base_config: dict[str, Any], tmp_path: Path
) -> None:
    base_config["database"]["url"] = postgres.create_database("cluster_start")
    config = write_settings(tmp_path, base_config)
    check = [sys.executable, "-m", "intake", "--config", str(config), "check"]
    daemons = [start_daemon(config, f"daemon{n}") for n in range(3)]
    checks = [subprocess.Popen(check, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for daemon in daemons:
            daemon.wait_for_log("intake running")
        for process in checks:
            out, _ = process.communicate(timeout=60)
            assert process.returncode == 0, out
    finally:
        for daemon in daemons:
            daemon.process.send_signal(signal.SIGTERM)
            daemon.process.wait(timeout=60)
    for daemon in daemons:
        assert daemon.process.returncode == 0, daemon.log
        assert "Traceback" not in daemon.log and "already exists" not in daemon.log, daemon.log
    applied = postgres.psql("SELECT name FROM tortoise_migrations ORDER BY id", "cluster_start")
    migrations = sorted(path.stem for path in MIGRATIONS.glob("0*.py"))
    assert applied.splitlines() == migrations  # each applied once, none missing


def _cron(config: Path, stop: threading.Event, runs: list[int]) -> None:
    """`intake poll` from cron, every second, beside the daemons."""
    command = [sys.executable, "-m", "intake", "--config", str(config), "poll"]
    env = {**os.environ, IMAP_PASSWORD_ENV: DEFAULT_PASSWORD}
    while not stop.is_set():
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        runs.append(result.returncode)
        stop.wait(1)


def test_two_daemons_and_a_cron_poll_share_a_backlog_while_one_is_killed_twice(
    postgres: Postgres,
    dovecot: Dovecot,
    sink: SmtpSink,
    folder: str,
    imap_config: dict[str, Any],
    tmp_path: Path,
) -> None:
    database = "cluster_backlog"
    imap_config["database"]["url"] = postgres.create_database(database)
    imap_config["mailbox"].update(first_run_limit=0, claim_for="3s")
    imap_config["outbound"].update(claim_for="3s", timeout_seconds=1)
    imap_config["schedule"] = dict(QUICK)
    imap_config["digest"] = {"enabled": False}  # only the mail the reports themselves cause
    config = write_settings(tmp_path, imap_config)
    reporters = [f"r{n}@example.net" for n in range(BACKLOG)]
    dovecot.append_many((make_mail(sender=r, body=f"Report {r}.") for r in reporters), folder)

    chance = random.Random(13)
    stop_cron, cron_runs = threading.Event(), []
    cron = threading.Thread(target=_cron, args=(config, stop_cron, cron_runs))
    tickets = lambda: _count(postgres, database, "SELECT COUNT(*) FROM ticket")  # noqa: E731
    with running_daemon(config, name="steady") as steady:
        steady.wait_for_log("intake running")  # the database is migrated
        cron.start()
        killed: Daemon = start_daemon(config, "killed")
        restarted_at = 0  # where the running instance's lines begin in the shared log
        try:
            for _ in range(KILLS):
                progress = tickets()
                wait_until(lambda: tickets() > progress + 20, "the daemons at work")  # noqa: B023
                threading.Event().wait(chance.uniform(0, 0.5))
                killed.process.send_signal(signal.SIGKILL)
                killed.process.wait()
                restarted_at = len(killed.log)
                killed = start_daemon(config, "killed")
            wait_until(
                lambda: {r for m in list(sink.messages) for r in m.rcpt_tos} >= set(reporters),
                "an acknowledgement for every report",
                seconds=240,
            )
        finally:
            stop_cron.set()
            cron.join(timeout=120)
            # Stopped once it is up: a SIGTERM in its first moments ends it before its handler
            # is in place, and the work can be done before the last restart is.
            wait_until(lambda: "intake running" in killed.log[restarted_at:], "the restart")
            killed.process.send_signal(signal.SIGTERM)
            killed.process.wait(timeout=60)
    assert killed.process.returncode == 0, killed.log
    assert "Traceback" not in steady.log
    # A parse worker being spawned when its daemon was killed dies with it, saying so.
    for traceback in killed.log.split("Traceback")[1:]:
        assert "spawn_main" in traceback and "EOFError" in traceback, killed.log
    assert cron_runs and set(cron_runs) == {0}, cron_runs

    assert tickets() == BACKLOG  # every report is one case
    assert _count(postgres, database, "SELECT COUNT(*) FROM inbound_message") == BACKLOG
    unsent = "SELECT COUNT(*) FROM outbound_message WHERE state != 'sent'"
    assert _count(postgres, database, unsent) == 0
    copies = Counter(m.parsed()["Message-ID"] for m in sink.messages)
    duplicates = sum(count - 1 for count in copies.values())
    print(f"\n{BACKLOG} reports, {KILLS} kills: {len(copies)} emails, {duplicates} sent twice")
    assert duplicates <= KILLS * SENT_BACKLOG_MAX  # accepted, not yet recorded, then killed
    kinds = postgres.psql("SELECT kind, COUNT(*) FROM outbound_message GROUP BY kind", database)
    assert len(copies) == 2 * BACKLOG, kinds  # an acknowledgement and an assignment notice each
    assert dovecot.uids(folder) == []


async def test_a_reminder_due_while_three_daemons_run_is_sent_once(
    postgres: Postgres, base_config: dict[str, Any], tmp_path: Path
) -> None:
    base_config["database"]["url"] = postgres.create_database("cluster_reminder")
    base_config["schedule"] = {**QUICK, "deadlines_every": "1s"}
    settings = settings_from(tmp_path, base_config)
    async with running(settings):
        bob = await TeamMember.get(email="bob@example.org")
        ticket = await Ticket.create(
            ref="COC-2026-0042", kind="report", reporter_email="x@example.net", assignee=bob
        )
        await Ticket.filter(id=ticket.id).update(created_at=datetime.now(UTC) - timedelta(hours=80))
    outbox = Path(base_config["outbound"]["path"])
    assert settings.source_file is not None
    daemons = [start_daemon(settings.source_file, f"daemon{n}") for n in range(3)]
    try:
        wait_until(lambda: any(outbox.glob("*-reminder.eml")), "the reminder")
        for daemon in daemons:  # every daemon has had its turn at the deadlines job since
            daemon.wait_for_log("intake running")
        threading.Event().wait(3)
    finally:
        for daemon in daemons:
            daemon.process.send_signal(signal.SIGTERM)
            daemon.process.wait(timeout=60)
    assert len(list(outbox.glob("*-reminder.eml"))) == 1
    reminders = "SELECT COUNT(*) FROM outbound_message WHERE kind = 'reminder'"
    assert _count(postgres, "cluster_reminder", reminders) == 1
