"""Push: the daemon hears of new mail as it arrives (IMAP IDLE on real Dovecot, inotify on a
local Maildir) and acknowledges it without waiting for a poll; without push it polls; a push
connection the server drops is made again, and nothing is lost or doubled.

The polls in these tests are an hour apart, so any acknowledgement seen within the test's
generous wait came through push, not through a poll."""

from __future__ import annotations

import copy
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import running_daemon, wait_until
from tests.servers import Dovecot, SmtpSink
from tests.support import intake, make_mail, write_settings

HOURLY = {
    "fetch_every": "1h",
    "fetch_every_while_pushed": "1h",
    "process_every": "1h",
    "deliver_every": "1h",
}


def _to(sink: SmtpSink, reporter: str) -> int:
    return sum(reporter in message.rcpt_tos for message in sink.messages)


def _wait_for_answer(sink: SmtpSink, reporter: str) -> None:
    wait_until(lambda: _to(sink, reporter) >= 1, f"the acknowledgement of {reporter}")


def _own_server_config(imap_config: dict[str, Any], imap: Dovecot) -> dict[str, Any]:
    data = copy.deepcopy(imap_config)
    data["mailbox"].update(port=imap.port, folder="INBOX", processed_folder="Done")
    data["schedule"] = dict(HOURLY)
    return data


def test_reports_appended_while_the_daemon_idles_are_acknowledged_without_a_poll(
    dovecot: Dovecot, sink: SmtpSink, folder: str, imap_config: dict[str, Any], tmp_path: Path
) -> None:
    imap_config["schedule"] = dict(HOURLY)
    with running_daemon(write_settings(tmp_path, imap_config)) as daemon:
        daemon.wait_for_log(f"push: IMAP IDLE on imap://info@example.org@127.0.0.1:{dovecot.port}")
        # The first may still be caught by the fetch that push's start triggers; the second
        # comes when every fetch is long over, so only IDLE's EXISTS can bring it in.
        for reporter in ("first@example.net", "second@example.net"):
            dovecot.append(make_mail(sender=reporter), folder=folder)
            _wait_for_answer(sink, reporter)
    assert "polling every 1h as a safety net" in daemon.log
    assert dovecot.uids(folder) == []  # fetched and moved, by the fetch's own connection


@pytest.mark.parametrize(
    ("idle_offered", "push"),
    [(False, True), (True, False)],
    ids=["the server does not offer IDLE", "push is off"],
)
def test_without_push_the_daemon_polls(
    idle_offered: bool,
    push: bool,
    tmp_path_factory: pytest.TempPathFactory,
    sink: SmtpSink,
    imap_config: dict[str, Any],
    tmp_path: Path,
) -> None:
    with Dovecot(tmp_path_factory.mktemp("no-push"), advertise_idle=idle_offered) as imap:
        data = _own_server_config(imap_config, imap)
        data["schedule"]["fetch_every"] = "1s"
        data["mailbox"]["push"] = push
        config = write_settings(tmp_path, data)
        with running_daemon(config) as daemon:
            daemon.wait_for_log("intake running")
            imap.append(make_mail(sender="polled@example.net"))
            _wait_for_answer(sink, "polled@example.net")
        checked = intake("check", config=config).stdout
    assert "IMAP IDLE on" not in daemon.log
    if push:
        assert "does not offer IDLE; polling every 1s" in daemon.log
        assert "push: IDLE not offered, polling every 1s" in checked
    else:
        assert "push:" not in daemon.log
        assert "push: off, polling every 1s" in checked


def test_an_idle_connection_the_server_drops_is_made_again_and_nothing_is_lost_or_doubled(
    tmp_path_factory: pytest.TempPathFactory,
    sink: SmtpSink,
    imap_config: dict[str, Any],
    tmp_path: Path,
) -> None:
    with Dovecot(tmp_path_factory.mktemp("idle-restart")) as imap:
        data = _own_server_config(imap_config, imap)
        with running_daemon(write_settings(tmp_path, data)) as daemon:
            daemon.wait_for_log("push: IMAP IDLE on")
            imap.append(make_mail(sender="before@example.net"))
            _wait_for_answer(sink, "before@example.net")

            imap.restart()  # every connection, the IDLE one included, is cut
            imap.append(make_mail(sender="meanwhile@example.net"))  # before push is back
            daemon.wait_for_log("push: working again")
            imap.append(make_mail(sender="after@example.net"))
            for reporter in ("meanwhile@example.net", "after@example.net"):
                _wait_for_answer(sink, reporter)
            assert imap.uids("INBOX") == []

        assert len(daemon.lines("push: ")) == 3, daemon.log  # up, down once, working again
        assert len(daemon.lines("until it is back")) == 1
    for reporter in ("before@example.net", "meanwhile@example.net", "after@example.net"):
        assert _to(sink, reporter) == 1, f"{reporter} acknowledged exactly once"
    with sqlite3.connect(tmp_path / "intake.sqlite3") as database:
        [(cases,)] = database.execute("SELECT COUNT(*) FROM ticket").fetchall()
    assert cases == 3


def test_mail_dropped_into_a_watched_maildir_is_acknowledged_without_a_poll(
    base_config: dict[str, Any], tmp_path: Path
) -> None:
    base_config["schedule"] = dict(HOURLY)
    maildir = Path(base_config["mailbox"]["path"])
    outbox = Path(base_config["outbound"]["path"])
    with running_daemon(write_settings(tmp_path, base_config)) as daemon:
        daemon.wait_for_log("watched (inotify)")
        (maildir / "tmp").mkdir(parents=True, exist_ok=True)
        # The second comes when every fetch since the start is long over: only inotify can
        # bring it in.
        for n in (1, 2):
            partial = maildir / "tmp" / f"{n}.report"
            partial.write_bytes(make_mail(sender=f"dropped{n}@example.net"))
            os.rename(partial, maildir / "new" / f"{n}.report")  # as an MTA delivers
            wait_until(
                lambda: len(list(outbox.glob("*-acknowledgement.eml"))) == n,  # noqa: B023
                f"acknowledgement {n} in the outbox",
            )
    assert not any((maildir / "new").iterdir())


def test_idle_renewed_every_second_still_hears_every_report(
    dovecot: Dovecot, sink: SmtpSink, folder: str, imap_config: dict[str, Any], tmp_path: Path
) -> None:
    """DONE, NOOP and IDLE again every second: mail that lands while IDLE is being renewed is
    announced in the answers to DONE or NOOP, and is heard there too."""
    imap_config["schedule"] = dict(HOURLY)
    imap_config["mailbox"]["idle_renew"] = "1s"
    reporters = [f"renewed{n}@example.net" for n in range(6)]
    with running_daemon(write_settings(tmp_path, imap_config)) as daemon:
        daemon.wait_for_log("push: IMAP IDLE on")
        for reporter in reporters:
            dovecot.append(make_mail(sender=reporter), folder=folder)
            time.sleep(0.35)
        for reporter in reporters:
            _wait_for_answer(sink, reporter)
    assert len(daemon.lines("push:")) == 1  # renewing is not reconnecting
