"""Safe onboarding: a mailbox full of old mail is never answered wholesale by accident."""

from __future__ import annotations

import json
from pathlib import Path

from tests.servers import Dovecot, SmtpSink
from tests.support import intake, make_mail, write_settings


def _with_old_mail(
    dovecot: Dovecot, folder: str, imap_config: dict[str, object], tmp_path: Path, count: int
) -> Path:
    mailbox = imap_config["mailbox"]
    assert isinstance(mailbox, dict)
    mailbox["first_run_limit"] = 5
    dovecot.append_many(
        [make_mail(sender=f"old{n}@example.net", body=f"old report {n}") for n in range(count)],
        folder=folder,
    )
    return write_settings(tmp_path, imap_config)


def test_a_first_run_over_the_limit_stops_and_asks(
    dovecot: Dovecot, sink: SmtpSink, folder: str, imap_config: dict[str, object], tmp_path: Path
) -> None:
    config = _with_old_mail(dovecot, folder, imap_config, tmp_path, 8)
    result = intake("poll", config=config, check=False)
    assert result.returncode == 1
    assert "already holds 8 messages" in result.stderr
    assert "intake backfill --no-replies" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert len(dovecot.uids(folder)) == 8  # untouched
    assert sink.messages == []


def test_backfill_without_replies_makes_quiet_cases(
    dovecot: Dovecot, sink: SmtpSink, folder: str, imap_config: dict[str, object], tmp_path: Path
) -> None:
    config = _with_old_mail(dovecot, folder, imap_config, tmp_path, 8)
    out = intake("backfill", "--no-replies", config=config).stdout
    assert "imported 8" in out and "no one was mailed" in out
    assert len(json.loads(intake("tickets", "--json", config=config).stdout)) == 8
    assert sink.messages == []  # neither the old senders nor the team were mailed
    reasons = [
        row["reason"] for row in json.loads(intake("inbound", "--json", config=config).stdout)
    ]
    assert all("backfill --no-replies" in reason for reason in reasons)

    dovecot.append(make_mail(sender="new@example.net"), folder=folder)
    intake("poll", config=config)  # after the backfill, new mail is answered as usual
    # (the poll, which delivers before it exits, also sends the team its first digest: an
    # overview of the imported cases)
    sent = sink.wait_for(2)
    answers = [m for m in sent if not m.parsed()["Subject"].startswith("Open cases on")]
    recipients = sorted(rcpt for message in answers for rcpt in message.rcpt_tos)
    assert len(recipients) == 2 and "new@example.net" in recipients
    assert recipients[0] in {"alice@example.org", "bob@example.org"}


def test_backfill_with_replies_answers_everyone(
    dovecot: Dovecot, sink: SmtpSink, folder: str, imap_config: dict[str, object], tmp_path: Path
) -> None:
    config = _with_old_mail(dovecot, folder, imap_config, tmp_path, 8)
    intake("backfill", "--with-replies", config=config)
    assert len(sink.wait_for(16)) == 16


def test_backfill_needs_a_choice(tmp_path: Path, imap_config: dict[str, object]) -> None:
    result = intake("backfill", config=write_settings(tmp_path, imap_config), check=False)
    assert result.returncode == 1
    assert "choose --no-replies or --with-replies" in result.stderr


def test_a_small_first_run_is_answered_as_usual(
    dovecot: Dovecot, sink: SmtpSink, folder: str, imap_config: dict[str, object], tmp_path: Path
) -> None:
    config = _with_old_mail(dovecot, folder, imap_config, tmp_path, 3)
    intake("poll", config=config)
    assert len(sink.wait_for(6)) == 6
