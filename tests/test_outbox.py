"""The outbox by hand: show one email, retry what failed, cancel what must not go out (with
the reason recorded on the case), all in --json too; mail already sent is refused clearly."""

from __future__ import annotations

import getpass
import json
import sqlite3
from pathlib import Path

from tests.support import base_settings, intake, make_mail, write_settings


def _one_case(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """A report processed and its two emails sent; returns the settings and the emails' ids."""
    (tmp_path / "mail" / "new").mkdir(parents=True)
    (tmp_path / "mail" / "new" / "r.eml").write_bytes(make_mail(sender="sam@example.net"))
    config = write_settings(tmp_path, base_settings(tmp_path))
    intake("poll", config=config)
    rows = json.loads(intake("outbox", "--json", config=config).stdout)
    return config, {row["kind"]: row["id"] for row in rows}


def _set(tmp_path: Path, sql: str) -> None:
    with sqlite3.connect(tmp_path / "intake.sqlite3") as database:
        database.execute(sql)


def test_a_failed_email_is_retried_and_a_waiting_one_cancelled_with_its_reason_on_the_case(
    tmp_path: Path,
) -> None:
    config, ids = _one_case(tmp_path)
    ack, notice = ids["acknowledgement"], ids["assignment"]
    # As if the server had refused the acknowledgement for good and deferred the notice.
    _set(
        tmp_path,
        f"UPDATE outbound_message SET state = 'failed', attempts = 10,"
        f" last_error = '550 mailbox unavailable' WHERE id = {ack}",
    )
    _set(
        tmp_path,
        f"UPDATE outbound_message SET state = 'queued', attempts = 2,"
        f" next_attempt_at = '2999-01-01 00:00:00+00:00' WHERE id = {notice}",
    )

    shown = json.loads(intake("outbox", "show", str(ack), "--json", config=config).stdout)
    assert (shown["state"], shown["attempts"], shown["last_error"]) == (
        "failed",
        10,
        "550 mailbox unavailable",
    )
    assert ["To", "sam@example.net"] in [
        [n, v.split("<")[-1].rstrip(">")] for n, v in shown["headers"]
    ]
    text = intake("outbox", "show", str(ack), config=config).stdout
    assert "550 mailbox unavailable" in text and "Subject:" in text

    retried = json.loads(intake("outbox", "retry", "--failed", "--json", config=config).stdout)
    assert retried == {"queued": [ack]}
    cancelled = intake(
        "outbox", "cancel", str(notice), "--reason", "sent to the wrong member", config=config
    )
    assert f"outbound {notice} cancelled" in cancelled.stdout

    intake("poll", config=config)
    states = {
        row["id"]: row["state"]
        for row in json.loads(intake("outbox", "--json", config=config).stdout)
    }
    assert (states[ack], states[notice]) == ("sent", "cancelled")
    ref = json.loads(intake("tickets", "--json", config=config).stdout)[0]["ref"]
    thread = json.loads(intake("ticket", ref, "--json", config=config).stdout)["events"]
    [entry] = [e for e in thread if "cancelled" in e["body"]]
    assert f"cancelled by {getpass.getuser()} (command line)" in entry["body"]
    assert "sent to the wrong member" in entry["body"] and entry["internal"] is True


def test_mail_already_sent_is_neither_retried_nor_cancelled(tmp_path: Path) -> None:
    config, ids = _one_case(tmp_path)
    ack = ids["acknowledgement"]
    for command in (["retry", str(ack)], ["cancel", str(ack), "--reason", "too late"]):
        refused = intake("outbox", *command, config=config, check=False)
        assert refused.returncode == 1
        assert f"outbound {ack} is sent: only mail not sent is" in refused.stderr
        assert "Traceback" not in refused.stderr
    missing = intake("outbox", "show", "999", config=config, check=False)
    assert missing.returncode == 1 and "no outbound message 999" in missing.stderr
    nothing = intake("outbox", "retry", config=config, check=False)
    assert nothing.returncode == 1 and "name email ids, or --failed" in nothing.stderr
