"""The shared corpora, read in place, through the real road: Maildir fetch, then processing.

Each test copies one corpus folder into a temporary Maildir's new/ (never into the repository),
runs the real fetch (`fetch_once`) and the real pipeline (`process_pending`) against a fresh
SQLite database, and then asks the database what became of every file. Identical files are
stored once (sha256 is unique), so counts are of distinct contents and say so.

Run with `-s` to see one summary line per corpus.
"""

from __future__ import annotations

import hashlib
import mailbox
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email import message_from_bytes
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from intake.conduct.handlers import registry
from intake.engine.pipeline import process_pending
from intake.mail.parse import parse_message
from intake.runtime.cycle import running
from intake.settings.schema import Settings
from intake.store.models import InboundMessage, InboundState, OutboundMessage, Outcome
from intake.transport.fetch import FetchStats, fetch_once
from tests.support import CORPORA, base_settings, classify

SISIMAI = CORPORA / "sisimai-bounces"
STALWART = CORPORA / "stalwart-mail-parser" / "eml"
MIME4J = CORPORA / "mime4j-testmsgs"

MakeSettings = Callable[[dict[str, Any]], Settings]
IGNORED = {
    Outcome.IGNORED_AUTO_REPLY,
    Outcome.IGNORED_BOUNCE,
    Outcome.IGNORED_BULK,
    Outcome.IGNORED_OWN_ADDRESS,
}

# Bounces a person forwarded with their mail program ("Fwd: Returned mail: ...", typed text,
# no machine headers). sisimai digs the bounce out of them, but for an intake they are mail
# from a person: they become cases for the team to look at. Nobody is answered, not the
# MAILER-DAEMON quoted inside and not the forwarder either: the corpus yields zero replies.
FORWARDED_BY_A_PERSON = {
    "maildir/bsd/lhost-sendmail-14.eml": "shironeko@example.jp",
    "mailbox/mbox-0#35": "original-sender@example.jp",
}


@dataclass(frozen=True)
class Sample:
    label: str  # where it came from, relative to its corpus
    raw: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


@dataclass
class Run:
    samples: list[Sample]
    rows: dict[str, InboundMessage]  # by sha256
    outbound: list[OutboundMessage]
    answering: dict[int, int]  # outbound id -> id of the inbound message it answers
    reporters: dict[int, str]  # inbound id -> reporter address of the case it opened
    fetched: FetchStats

    def row(self, sample: Sample) -> InboundMessage:
        return self.rows[sample.sha256]

    def answers_to(self, row: InboundMessage) -> list[OutboundMessage]:
        return [message for message in self.outbound if self.answering.get(message.id) == row.id]

    def reporter(self, row: InboundMessage) -> str | None:
        """The reporter of the case this message opened, or None when it opened none."""
        return self.reporters.get(row.id)

    def slowest(self) -> tuple[float, str]:
        """The slowest sample to parse and classify (the per-message work outside the database),
        timed again here one by one: (seconds, label)."""
        timings = []
        for sample in self.samples:
            started = time.perf_counter()
            classify(parse_message(sample.raw))
            timings.append((time.perf_counter() - started, sample.label))
        return max(timings)

    def summary(self, corpus: str) -> str:
        outcomes = Counter(str(row.outcome) for row in self.rows.values())
        kinds = Counter(message.kind for message in self.outbound)
        seconds, label = self.slowest()
        return (
            f"{corpus}: {len(self.samples)} files, {len(self.rows)} distinct stored "
            f"(fetch counted stored={self.fetched.stored}, duplicates={self.fetched.duplicates}), "
            f"outcomes {dict(sorted(outcomes.items()))}, outbound {dict(sorted(kinds.items()))}, "
            f"slowest parse+classify {seconds * 1000:.1f} ms ({label})"
        )


def files_under(folder: Path, pattern: str) -> list[Sample]:
    return [
        Sample(str(path.relative_to(folder.parent)), path.read_bytes())
        for path in sorted(folder.rglob(pattern))
        if path.is_file()
    ]


def mbox_messages(path: Path) -> list[Sample]:
    box = mailbox.mbox(str(path))
    try:
        return [Sample(f"mailbox/{path.name}#{key}", box.get_bytes(key)) for key in box.iterkeys()]
    finally:
        box.close()


def sisimai_folder(name: str) -> list[Sample]:
    folder = SISIMAI / "maildir" / name
    return [
        Sample(f"maildir/{name}/{path.name}", path.read_bytes())
        for path in sorted(folder.iterdir())
    ]


def deliver_to_maildir(directory: Path, samples: Iterable[Sample]) -> None:
    new = directory / "new"
    new.mkdir(parents=True, exist_ok=True)
    for index, sample in enumerate(samples):
        name = "".join(char if char.isalnum() or char in "-." else "_" for char in sample.label)
        (new / f"{index:05d}.{name}").write_bytes(sample.raw)


async def run_pipeline(make_settings: MakeSettings, tmp_path: Path, samples: list[Sample]) -> Run:
    """Fetch every sample from a Maildir and process it; returns what the database then holds."""
    data = base_settings(tmp_path)
    data["mailbox"]["first_run_limit"] = 0  # a whole corpus at once: answer as usual
    settings = make_settings(data)
    assert settings.mailbox.path is not None
    deliver_to_maildir(settings.mailbox.path, samples)
    async with running(settings):
        fetched = await fetch_once(settings)
        assert fetched.seen == fetched.moved == len(samples)
        await process_pending(settings, registry(settings))
        rows = {row.sha256: row for row in await InboundMessage.all()}
        outbound = await OutboundMessage.all()
        answering = await OutboundMessage.filter(in_reply_to_id__isnull=False).values_list(
            "id", "in_reply_to__id"
        )
        reporters = await InboundMessage.filter(ticket_id__isnull=False).values_list(
            "id", "ticket__reporter_email"
        )
    assert not list((settings.mailbox.path / "new").iterdir()), "every file moved out of new/"
    return Run(
        samples=samples,
        rows=rows,
        outbound=outbound,
        answering={int(out): int(into) for out, into in answering},
        reporters={int(inbound): str(email) for inbound, email in reporters},
        fetched=fetched,
    )


def sender_addresses(raw: bytes) -> set[str]:
    """From, Reply-To, Sender and Return-Path as the stdlib reads them: whom a reply could reach."""
    message = message_from_bytes(raw)
    values = [
        str(value)
        for name in ("From", "Reply-To", "Sender", "Return-Path")
        for value in message.get_all(name, [])
    ]
    return {address.lower() for _name, address in getaddresses(values) if address}


def recipients(messages: Iterable[OutboundMessage]) -> set[str]:
    return {str(address).lower() for message in messages for address in message.recipients}


def assert_stored_and_finished(run: Run) -> None:
    assert set(run.rows) == {sample.sha256 for sample in run.samples}
    for sample in run.samples:
        row = run.row(sample)
        assert row.raw_bytes == sample.raw, sample.label
        assert row.state == InboundState.DONE, (sample.label, row.state, row.last_error)
        assert row.outcome, sample.label
        assert row.outcome != Outcome.FAILED, (sample.label, row.last_error)


def assert_machine_mail_unanswered(run: Run) -> None:
    """No case, no acknowledgement, nothing at all to any address the bounce came from."""
    machine = [sample for sample in run.samples if sample.label not in FORWARDED_BY_A_PERSON]
    for sample in machine:
        row = run.row(sample)
        assert row.outcome in IGNORED, (sample.label, row.outcome, row.reason)
        assert run.reporter(row) is None, sample.label
        assert run.answers_to(row) == [], sample.label
    senders = set().union(*(sender_addresses(sample.raw) for sample in machine))
    assert not recipients(run.outbound) & senders


def assert_forwards_by_people_are_cases(run: Run) -> None:
    for sample in run.samples:
        forwarder = FORWARDED_BY_A_PERSON.get(sample.label)
        if forwarder is None:
            continue
        row = run.row(sample)
        assert row.outcome == Outcome.TICKET_CREATED, (sample.label, row.reason)
        assert run.reporter(row) == forwarder
        assert run.answers_to(row) == [], sample.label
        assert "forwards a delivery failure notice" in row.reason
        assert "mailer-daemon" not in recipients(run.outbound)


async def test_sisimai_bsd_bounces_are_never_answered(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    samples = sisimai_folder("bsd")
    run = await run_pipeline(make_settings, tmp_path, samples)
    print(run.summary("sisimai-bounces maildir/bsd (LF)"))

    assert len(samples) == 612
    assert len(run.rows) == 582  # 30 files are byte-identical copies of others
    assert_stored_and_finished(run)
    assert_machine_mail_unanswered(run)
    assert_forwards_by_people_are_cases(run)
    outcomes = Counter(row.outcome for row in run.rows.values())
    assert outcomes[Outcome.TICKET_CREATED] == 1  # lhost-sendmail-14, forwarded by a person
    assert Counter(m.kind for m in run.outbound) == {"assignment": 1}  # the team, only
    assert outcomes[Outcome.IGNORED_BOUNCE] > 400
    # The rfc3834-* samples are vacation replies. Two of them come with an empty Return-Path,
    # which is read first and labels them bounces: ignored all the same.
    vacation = {
        Path(s.label).name: run.row(s).outcome
        for s in samples
        if Path(s.label).name.startswith("rfc3834-")
    }
    assert vacation == {
        "rfc3834-01.eml": Outcome.IGNORED_AUTO_REPLY,
        "rfc3834-02.eml": Outcome.IGNORED_BOUNCE,
        "rfc3834-03.eml": Outcome.IGNORED_AUTO_REPLY,
        "rfc3834-04.eml": Outcome.IGNORED_BOUNCE,
        "rfc3834-05.eml": Outcome.IGNORED_AUTO_REPLY,
    }


async def test_sisimai_crlf_bounces_are_never_answered(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    run = await run_pipeline(make_settings, tmp_path, sisimai_folder("dos"))
    print(run.summary("sisimai-bounces maildir/dos (CRLF)"))

    assert (len(run.samples), len(run.rows)) == (64, 63)
    assert_stored_and_finished(run)
    assert_machine_mail_unanswered(run)
    assert run.outbound == []


async def test_sisimai_cr_only_bounces_are_never_answered(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    run = await run_pipeline(make_settings, tmp_path, sisimai_folder("mac"))
    print(run.summary("sisimai-bounces maildir/mac (CR)"))

    assert (len(run.samples), len(run.rows)) == (65, 64)
    assert_stored_and_finished(run)
    assert_machine_mail_unanswered(run)
    assert run.outbound == []


async def test_sisimai_mbox_bounces_are_never_answered(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    samples = [
        *mbox_messages(SISIMAI / "mailbox" / "mbox-0"),
        *mbox_messages(SISIMAI / "mailbox" / "mbox-1"),
    ]
    run = await run_pipeline(make_settings, tmp_path, samples)
    print(run.summary("sisimai-bounces mailbox/mbox-0 + mbox-1"))

    assert (len(run.samples), len(run.rows)) == (38, 38)
    assert_stored_and_finished(run)
    assert_machine_mail_unanswered(run)
    assert_forwards_by_people_are_cases(run)
    tickets = [row for row in run.rows.values() if row.outcome == Outcome.TICKET_CREATED]
    assert len(tickets) == 1  # mbox-0 #35, forwarded by a person
    assert Counter(m.kind for m in run.outbound) == {"assignment": 1}  # the team, only


async def test_sisimai_negative_samples_are_mail_from_people(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    """maildir/not holds two ordinary messages written by people: both become acknowledged cases.

    is-not-bounce-01 carries Reply-To: mikeneko@example.org, so that is where the answer goes;
    is-not-bounce-02 is a person attaching an original message, which must not make it look like
    a bounce.
    """
    run = await run_pipeline(make_settings, tmp_path, sisimai_folder("not"))
    print(run.summary("sisimai-bounces maildir/not"))

    assert_stored_and_finished(run)
    expected = {
        "maildir/not/is-not-bounce-01.eml": ("shironeko@example.com", "mikeneko@example.org"),
        "maildir/not/is-not-bounce-02.eml": ("dummy@example.com", "dummy@example.com"),
    }
    assert {sample.label for sample in run.samples} == set(expected)
    for sample in run.samples:
        reporter, answer_to = expected[sample.label]
        row = run.row(sample)
        assert row.outcome == Outcome.TICKET_CREATED, (sample.label, row.reason)
        assert run.reporter(row) == reporter
        answers = [(m.kind, m.recipients) for m in run.answers_to(row)]
        assert answers == [("acknowledgement", [answer_to])], sample.label
    assert Counter(m.kind for m in run.outbound) == {"acknowledgement": 2, "assignment": 2}


async def test_stalwart_messages_are_stored_and_finished(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    samples = files_under(STALWART, "*.eml")
    run = await run_pipeline(make_settings, tmp_path, samples)
    print(run.summary("stalwart-mail-parser eml/**"))

    assert len(samples) == 107
    assert len(run.rows) == 106  # two files hold the same bytes
    assert_stored_and_finished(run)


async def test_mime4j_messages_are_stored_and_finished(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    samples = files_under(MIME4J, "*.msg")
    run = await run_pipeline(make_settings, tmp_path, samples)
    print(run.summary("mime4j-testmsgs **/*.msg"))

    assert len(samples) == 80
    assert len(run.rows) == 76  # four messages appear twice
    assert_stored_and_finished(run)


async def test_every_file_under_the_corpora_whatever_it_holds_goes_through(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    """Hostile input in the widest sense: every file of every corpus, expected-result files,
    bare reply bodies and licences included, as if it had arrived as mail."""
    samples = [
        Sample(str(path.relative_to(CORPORA)), path.read_bytes())
        for path in sorted(CORPORA.rglob("*"))
        if path.is_file()
    ]
    run = await run_pipeline(make_settings, tmp_path, samples)
    print(run.summary("every file under corpora/"))
    assert len(samples) > 1500
    assert_stored_and_finished(run)
