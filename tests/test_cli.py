"""The command line the team uses on the server, run as the real `intake` command."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.servers import Dovecot, SmtpSink, free_port
from tests.support import REPO, base_settings, intake, make_mail, write_settings


def _maildir_config(tmp_path: Path) -> Path:
    (tmp_path / "mail" / "new").mkdir(parents=True)
    return write_settings(tmp_path, base_settings(tmp_path))


def _deliver(tmp_path: Path, name: str, raw: bytes) -> None:
    (tmp_path / "mail" / "new" / name).write_bytes(raw)


def test_poll_once_then_the_listings_as_json(tmp_path: Path) -> None:
    config = _maildir_config(tmp_path)
    _deliver(tmp_path, "1.eml", make_mail(subject="Slurs in the chat", message_id="<a@x.net>"))
    _deliver(tmp_path, "2.eml", make_mail(headers={"Auto-Submitted": "auto-replied"}))

    poll = intake("poll", "--once", config=config)
    assert "processed 2" in poll.stdout
    assert "ticket_created" in poll.stderr and "ignored_auto_reply" in poll.stderr

    tickets = json.loads(intake("tickets", "--json", config=config).stdout)
    assert len(tickets) == 1
    assert {"ref", "kind", "status", "reporter", "assignee", "subject", "created_at"} <= set(
        tickets[0]
    )
    assert tickets[0]["subject"] == "Slurs in the chat"
    assert tickets[0]["reporter"] == "sam@example.net"

    inbound = json.loads(intake("inbound", "--json", config=config).stdout)
    assert {row["outcome"] for row in inbound} == {"ticket_created", "ignored_auto_reply"}
    assert {"id", "message_id", "outcome", "reason", "ticket"} <= set(inbound[0])
    created = next(row for row in inbound if row["outcome"] == "ticket_created")
    assert created["ticket"] == tickets[0]["ref"] and created["message_id"] == "<a@x.net>"

    outbox = json.loads(intake("outbox", "--json", config=config).stdout)
    assert sorted(row["kind"] for row in outbox) == ["acknowledgement", "assignment"]
    assert all(row["state"] == "sent" for row in outbox)
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2

    case = json.loads(intake("ticket", tickets[0]["ref"], "--json", config=config).stdout)
    assert case["events"][0]["body"].startswith("Someone keeps sending me")
    table = intake("ticket", tickets[0]["ref"], config=config).stdout
    assert "Someone keeps sending me" in table

    assert tickets[0]["ref"] in intake("tickets", config=config).stdout
    unknown = intake("ticket", "COC-1999-0001", config=config, check=False)
    assert unknown.returncode == 1 and unknown.stderr.strip() == "intake: no ticket COC-1999-0001"


def test_listings_show_the_most_recent_unless_all(tmp_path: Path) -> None:
    config = _maildir_config(tmp_path)
    for n in range(25):
        _deliver(tmp_path, f"{n}.eml", make_mail(sender=f"p{n}@example.net"))
    intake("poll", "--once", config=config)
    assert len(json.loads(intake("tickets", "--json", config=config).stdout)) == 20
    every = json.loads(intake("tickets", "--all", "--json", config=config).stdout)
    assert len(every) == 25
    assert every[0]["ref"].endswith("0025")


def test_check_tries_each_connection(
    tmp_path: Path, dovecot: Dovecot, sink: SmtpSink, imap_config: dict[str, Any]
) -> None:
    config = write_settings(tmp_path, imap_config)
    good = intake("check", config=config)
    lines = good.stdout.strip().splitlines()
    warnings = [line for line in lines if line.startswith("warning")]
    assert len(warnings) == 1 and "organisation.outside_contact is not set" in warnings[0]
    lines = [line for line in lines if not line.startswith("warning")]
    assert [line.split()[0:2] for line in lines] == [
        ["ok", "settings"],
        ["ok", "mailbox"],
        ["ok", "outbound"],
        ["ok", "database"],
        ["ok", "schema"],
        ["ok", "queues"],
        ["ok", "retention"],
    ]
    assert "0 case(s) due for purging, 0 held; purged every 1d" in lines[6]
    assert lines[1].endswith(", push: IMAP IDLE")  # the session's Dovecot offers IDLE
    assert "migrations applied" in lines[4]
    assert lines[5].endswith("inbound 0 waiting, 0 parked; outbound 0 queued, 0 failed")

    imap_config["outbound"]["port"] = free_port()
    bad = intake("check", config=write_settings(tmp_path, imap_config), check=False)
    assert bad.returncode == 1
    outbound = next(line for line in bad.stdout.splitlines() if "outbound" in line)
    assert outbound.startswith("FAILED") and "connect call failed" in outbound.lower()


def test_roster_prints_who_is_on_duty_and_next(tmp_path: Path) -> None:
    config = _maildir_config(tmp_path)
    out = intake("roster", "--at", "2026-01-13T10:00:00", "--periods", "3", config=config).stdout
    rows = [line for line in out.splitlines() if "@example.org" in line]
    assert len(rows) == 3
    assert "Bob Member" in rows[0].split("│")[3]
    assert "Alice Lead" in rows[1].split("│")[3]


def test_the_daemon_works_until_sigterm_then_exits_cleanly(tmp_path: Path) -> None:
    data = base_settings(tmp_path)
    data["schedule"] = {"fetch_every": "1s", "process_every": "1s", "deliver_every": "1s"}
    (tmp_path / "mail" / "new").mkdir(parents=True)
    config = write_settings(tmp_path, data)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "intake", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _deliver(tmp_path, "1.eml", make_mail())
        deadline = time.monotonic() + 60
        while len(list((tmp_path / "outbox").glob("*.eml"))) < 2:
            assert daemon.poll() is None, daemon.communicate()
            assert time.monotonic() < deadline, "the daemon did not deliver within 60 s"
            time.sleep(0.2)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, stderr
    assert "received SIGTERM" in stderr
    assert stderr.strip().splitlines()[-1].endswith("intake stopped")
    assert "Traceback" not in stderr


def test_the_readme_example_mail_becomes_cases(tmp_path: Path) -> None:
    config = _maildir_config(tmp_path)
    for example in sorted((REPO / "examples" / "mail").glob("*.eml")):
        _deliver(tmp_path, example.name, example.read_bytes())
    intake("poll", "--once", config=config)
    tickets = json.loads(intake("tickets", "--json", config=config).stdout)
    inbound = json.loads(intake("inbound", "--json", config=config).stdout)
    assert len(tickets) == 2  # two reports; the out-of-office reply makes no case
    assert sorted(row["outcome"] for row in inbound) == [
        "ignored_auto_reply",
        "ticket_created",
        "ticket_created",
    ]


def test_a_parked_message_can_be_inspected_and_retried(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    good_ack = (REPO / "templates" / "acknowledgement.j2").read_text()
    for template in (REPO / "templates").glob("*.j2"):
        (templates / template.name).write_text(template.read_text())
    (templates / "acknowledgement.j2").write_text(
        "{% block subject %}{{ typo }}{% endblock %}{% block text %}x{% endblock %}"
    )
    data = base_settings(tmp_path)
    data["paths"]["templates"] = str(templates)
    data["processing"] = {"max_attempts": 1}
    (tmp_path / "mail" / "new").mkdir(parents=True)
    config = write_settings(tmp_path, data)
    _deliver(tmp_path, "1.eml", make_mail(message_id="<parked@example.net>"))

    intake("poll", config=config)
    failed = json.loads(intake("inbound", "--failed", "--json", config=config).stdout)
    assert [(row["message_id"], row["outcome"]) for row in failed] == [
        ("<parked@example.net>", "failed")
    ]
    detail = json.loads(
        intake("inbound", "show", str(failed[0]["id"]), "--json", config=config).stdout
    )
    assert "UndefinedError" in detail["last_error"]
    assert ["Message-ID", "<parked@example.net>"] in detail["headers"]
    assert "typo" in intake("inbound", "show", str(failed[0]["id"]), config=config).stdout

    (templates / "acknowledgement.j2").write_text(good_ack)  # the operator fixes the template
    assert "1 message(s) back" in intake("inbound", "retry", "--all", config=config).stdout
    intake("poll", config=config)
    assert json.loads(intake("inbound", "--failed", "--json", config=config).stdout) == []
    assert len(json.loads(intake("tickets", "--json", config=config).stdout)) == 1
    refused = intake("inbound", "retry", config=config, check=False)
    assert refused.returncode == 1 and "name message ids, or --all" in refused.stderr


def test_log_lines_as_json_carry_the_fields_of_the_text_line_and_stay_redacted(
    tmp_path: Path,
) -> None:
    config = _maildir_config(tmp_path)
    forged = "info+3-1-abcdefghijklmnop@example.org"  # a reply address whose signature is wrong
    _deliver(tmp_path, "report.eml", make_mail(sender="json@example.net"))
    _deliver(tmp_path, "forged.eml", make_mail(sender="mallory@example.net", to=forged))
    result = intake("--log-format", "json", "poll", config=config)
    lines = [json.loads(line) for line in result.stderr.strip().splitlines()]
    assert lines and all(set(line) >= {"time", "level", "logger", "message"} for line in lines)
    outcomes = [line for line in lines if line["logger"] == "intake.pipeline"]
    assert any("-> ticket_created" in line["message"] for line in outcomes)
    assert all(line["level"] in {"INFO", "WARNING"} for line in outcomes)
    assert "abcdefghijklmnop" not in result.stderr  # the signature is redacted here too


def test_check_fails_when_mail_waits_too_long_or_a_job_keeps_failing(tmp_path: Path) -> None:
    config = _maildir_config(tmp_path)
    intake("check", config=config)  # creates the database
    database = tmp_path / "intake.sqlite3"
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat(sep=" ")
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO inbound_message (raw_bytes, size, sha256, mailbox, folder, received_at,"
            " arrived_at, state, reason, attempts, quiet) VALUES (x'00', 1, 'abc', 'test',"
            f" 'new', '{hour_ago}', '{hour_ago}', 'pending', '', 0, 0)"
        )
        connection.execute(
            "INSERT INTO job_run (name, succeeded_at, failed_at, error, holder) VALUES"
            f" ('fetch', '{hour_ago}', '{datetime.now(UTC).isoformat(sep=' ')}',"
            " 'imap://x: login failed', 'h:1:a')"
        )
        for job in ("deliver", "lag"):  # not failing, just not done for an hour
            connection.execute(
                "INSERT INTO job_run (name, succeeded_at, error, holder) VALUES"
                f" ('{job}', '{hour_ago}', '', 'h:1:a')"
            )
    stuck = intake("check", config=config, check=False)
    assert stuck.returncode == 1
    failed = [line for line in stuck.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 3, stuck.stdout
    assert "queues" in failed[0] and "inbound 1 waiting (oldest 1 hour)" in failed[0]
    assert "job deliver" in failed[1] and "last success 1 hour ago" in failed[1]
    assert "job fetch" in failed[2] and "login failed" in failed[2]
    assert any(line.startswith("ok       job lag") for line in stuck.stdout.splitlines())
