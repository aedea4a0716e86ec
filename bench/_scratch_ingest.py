#!/usr/bin/env python3
"""End-to-end ingest benchmark: `intake poll --once` against a bare pipeline doing the same work.

    python bench/ingest [--messages N] [--seed S] [--json FILE] [--cprofile FILE | --py-spy FILE]
    python bench/ingest --daemons 1,2 --database postgres    # daemons sharing one database

1. Builds a reproducible backlog of N human reports (bench/backlog.py; default 2,000, seed 1).
2. Starts a throwaway Dovecot and an aiosmtpd sink on 127.0.0.1 (tests/servers/) and APPENDs
   the backlog twice: to the folder Intake polls and to a second folder for the bare pipeline.
3. Runs the real console script, `intake --config settings.toml poll --once`, as a subprocess
   (IMAP and SMTP without TLS, SQLite in a temp dir) and checks it did all the work: 2N emails
   at the sink (N acknowledgements, N assignment notices), N tickets, the folder emptied.
4. Runs bench/bare_pipeline.py as a subprocess on the second folder: fetch, parse with
   mail-parser, two short emails per message over one SMTP connection, nothing stored.
5. Prints messages/second (subprocess wall time, start-up included), the ratio ours / bare and
   the peak RSS of each process (bench/measure.py: wait4 from a small launcher).

With --daemons, step 3 is instead, for each N given, N `intake run` daemons started together on
a folder and a database of their own (bench/daemons.py), timed until all the work is done.

Servers and temp dirs are removed on the way out, also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.backlog import build_backlog  # noqa: E402
from bench.daemons import run_daemons  # noqa: E402
from tests.servers import DEFAULT_PASSWORD, Dovecot, Postgres, SmtpSink  # noqa: E402
from tests.support import TEAM, base_settings, to_toml  # noqa: E402

MEASURE = REPO / "bench" / "measure.py"
PASSWORD_ENV = "INTAKE_BENCH_IMAP_PASSWORD"
INTAKE_FOLDER = "Bench"
BARE_FOLDER = "Bare"
TEAM_ADDRESSES = frozenset(member["email"] for member in TEAM)
TARGET_RATE, TARGET_RATIO = 100.0, 0.5
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ ([\w.]+): (.*)$")


class BenchFailure(Exception):
    """The run did not do all the work it was asked to: its figures mean nothing."""


@dataclass(frozen=True)
class Measured:
    """One finished subprocess, as bench/measure.py saw it: wall time, CPU, peak RSS."""

    seconds: float
    cpu_seconds: float  # user + system
    max_rss_kb: int
    returncode: int
    started_at: float  # time.time() at fork, to line up with log timestamps
    stdout: Path
    stderr: Path


@dataclass
class Result:
    name: str
    messages: int
    seconds: float
    cpu_seconds: float
    max_rss_mb: float
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


# -- processes -----------------------------------------------------------------------------------


def run_measured(
    argv: list[str], env: dict[str, str], logs: Path, name: str, timeout: float
) -> Measured:
    """Run ``argv`` under bench/measure.py, output to files; kill its process group on timeout."""
    stdout, stderr, rusage = (logs / f"{name}.{ext}" for ext in ("stdout", "stderr", "json"))
    launcher = [sys.executable, str(MEASURE), str(rusage), *argv]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            launcher,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            cwd=logs,
            start_new_session=True,  # its own group: a timeout or Ctrl-C ends it and its child
        )
        try:
            proc.wait(timeout=timeout)
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise BenchFailure(f"{name} still running after {timeout:.0f} s: killed") from None
            raise
    if not rusage.exists():
        raise BenchFailure(f"{name}: bench/measure.py failed\n{tail(stderr)}")
    data = json.loads(rusage.read_text())
    return Measured(
        seconds=data["seconds"],
        cpu_seconds=data["cpu_seconds"],
        max_rss_kb=data["max_rss_kb"],
        returncode=data["returncode"],
        started_at=data["started_at"],
        stdout=stdout,
        stderr=stderr,
    )


def figures(measured: Measured) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds, peak RSS in MB."""
    return measured.seconds, measured.cpu_seconds, measured.max_rss_kb / 1024


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def require_success(measured: Measured, name: str) -> None:
    if measured.returncode == 0:
        return
    raise BenchFailure(
        f"{name} failed (exit {measured.returncode}) after {measured.seconds:.1f} s\n"
        f"--- stderr (last lines) ---\n{tail(measured.stderr)}\n"
        f"--- stdout ---\n{tail(measured.stdout)}"
    )


def installed_script(name: str, hint: str) -> Path:
    """A console script next to this interpreter (not a pyenv shim), else one on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found is None:
        raise BenchFailure(f"`{name}` is not installed ({hint})")
    return Path(found)


def profiler_prefix(args: argparse.Namespace) -> list[str]:
    if args.cprofile:
        return [sys.executable, "-m", "cProfile", "-o", str(Path(args.cprofile).resolve())]
    if args.py_spy:
        py_spy = str(installed_script("py-spy", "pip install py-spy"))
        out = str(Path(args.py_spy).resolve())
        return [py_spy, "record", "--format", "raw", "--threads", "-o", out, "--", sys.executable]
    return [sys.executable]


# -- Intake --------------------------------------------------------------------------------------


def write_settings(
    workdir: Path,
    dovecot: Dovecot,
    sink: SmtpSink,
    folder: str = INTAKE_FOLDER,
    database_url: str | None = None,
) -> Path:
    data = base_settings(workdir)
    if database_url is not None:
        data["database"] = {"url": database_url}
    data["mailbox"] = {
        "kind": "imap",
        "host": dovecot.host,
        "port": dovecot.port,
        "security": "none",
        "username": dovecot.default_user,
        "password_env": PASSWORD_ENV,
        "folder": folder,
        "processed_folder": f"{folder}/Processed",
        "first_run_limit": 0,  # the backlog is the work to measure, acknowledgements included
    }
    data["outbound"] = {"kind": "smtp", "host": sink.host, "port": sink.port, "security": "none"}
    # The backlog has 400 senders writing about 5 reports each; the daily cap on
    # acknowledgements per sender (3 by default) would hold some back. The benchmark measures
    # the full work, an acknowledgement and a notice per message, so it lifts the cap.
    data["processing"] = {"acknowledgements_per_sender_per_day": 1_000_000}
    import json as _json
    for section, values in _json.loads(os.environ.get("BENCH_SET", "{}")).items():
        data.setdefault(section, {}).update(values)
    path = workdir / "settings.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    return path


def count_rows(database: Path, sql: str) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        return int(conn.execute(sql).fetchone()[0])


def check_intake(workdir: Path, dovecot: Dovecot, sink: SmtpSink, count: int) -> None:
    """Every message became a ticket, and both of its emails reached the sink."""
    problems = []
    try:
        received = sink.wait_for(2 * count, timeout=10)
    except TimeoutError as exc:
        received = list(sink.messages)
        problems.append(str(exc))
    notices = sum(1 for m in received if set(m.rcpt_tos) <= TEAM_ADDRESSES)
    if len(received) != 2 * count or notices != count:
        problems.append(
            f"sink: {len(received)} emails, {notices} assignment notices"
            f" (want {2 * count}, {count})"
        )
    database = workdir / "intake.sqlite3"
    checks = (
        ("tickets", "SELECT COUNT(*) FROM ticket", count),
        (
            "ticket_created",
            "SELECT COUNT(*) FROM inbound_message WHERE outcome = 'ticket_created'",
            count,
        ),
        ("outbound sent", "SELECT COUNT(*) FROM outbound_message WHERE state = 'sent'", 2 * count),
    )
    for label, sql, want in checks:
        if (found := count_rows(database, sql)) != want:
            problems.append(f"{label}: {found}, want {want}")
    if left := dovecot.uids(INTAKE_FOLDER):
        problems.append(f"{len(left)} message(s) left in {INTAKE_FOLDER}")
    if problems:
        details = "\n  ".join(problems)
        raise BenchFailure(f"intake poll --once did not do all the work:\n  {details}")


def log_phases(measured: Measured) -> dict[str, float]:
    """Seconds per stage from the log's timestamps: start-up + fetch, process, deliver, exit."""
    marks: dict[str, float] = {}
    for line in measured.stderr.read_text(errors="replace").splitlines():
        match = _LOG_TIME.match(line)
        if not match:
            continue
        stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        logger, text = match.group(2), match.group(3)
        if logger == "intake.fetch" and text.startswith("fetched"):
            marks["fetch"] = stamp
        elif logger == "intake.pipeline":
            marks["process"] = stamp
        elif logger == "intake.deliver":
            marks["deliver"] = stamp
    if set(marks) != {"fetch", "process", "deliver"}:
        return {}
    ends = [marks["fetch"], marks["process"], marks["deliver"]]
    starts = [measured.started_at, *ends]
    names = ["start-up + fetch", "process", "deliver", "exit"]
    finish = measured.started_at + measured.seconds
    return {name: b - a for name, a, b in zip(names, starts, [*ends, finish], strict=True)}


def run_intake(
    args: argparse.Namespace, workdir: Path, dovecot: Dovecot, sink: SmtpSink, count: int
) -> Result:
    settings = write_settings(workdir, dovecot, sink)
    intake = installed_script("intake", "pip install -e .")
    argv = [*profiler_prefix(args), str(intake), "--config", str(settings), "poll"]
    env = {**os.environ, PASSWORD_ENV: DEFAULT_PASSWORD}
    sink.clear()
    measured = run_measured([*argv, "--once"], env, workdir, "intake", args.timeout)
    require_success(measured, "intake poll --once")
    check_intake(workdir, dovecot, sink, count)
    name = "intake poll --once" + (" (PROFILED)" if args.cprofile or args.py_spy else "")
    return Result(name, count, *figures(measured), log_phases(measured))


# -- bare pipeline -------------------------------------------------------------------------------


def run_bare(
    args: argparse.Namespace, workdir: Path, dovecot: Dovecot, sink: SmtpSink, count: int
) -> Result:
    argv = [
        sys.executable,
        str(REPO / "bench" / "bare_pipeline.py"),
        *("--imap-port", str(dovecot.port), "--user", dovecot.default_user),
        *("--password-env", PASSWORD_ENV, "--folder", BARE_FOLDER, "--smtp-port", str(sink.port)),
    ]
    env = {**os.environ, PASSWORD_ENV: DEFAULT_PASSWORD}
    sink.clear()
    measured = run_measured(argv, env, workdir, "bare", args.timeout)
    require_success(measured, "bare pipeline")
    report = json.loads(measured.stdout.read_text().strip().splitlines()[-1])
    received = len(sink.messages)
    if report["messages"] != count or received != 2 * count:
        raise BenchFailure(
            f"bare pipeline: {report['messages']} messages, {received} emails at the sink "
            f"(want {count}, {2 * count})"
        )
    in_process = {"in-process": float(report["seconds"])}
    return Result("bare pipeline", count, *figures(measured), in_process)


# -- the run -------------------------------------------------------------------------------------


def describe_backlog(raws: list[bytes], seed: int) -> str:
    total = sum(len(raw) for raw in raws)
    attachments = sum(1 for raw in raws if b"Content-Disposition: attachment" in raw)
    charsets = Counter(
        match.group(1).decode()
        for raw in raws
        if (match := re.search(rb'charset="([\w-]+)"', raw)) is not None
    )
    mix = ", ".join(f"{name} {n}" for name, n in charsets.most_common())
    return (
        f"backlog: {len(raws)} messages (seed {seed}), {total / 1e6:.1f} MB, "
        f"mean {total / len(raws) / 1024:.1f} KB, {attachments} with an attachment; {mix}"
    )


def load(dovecot: Dovecot, raws: list[bytes], folder: str) -> float:
    started = time.perf_counter()
    dovecot.create_folder(folder)
    if dovecot.append_many(raws, folder) != len(raws):
        raise BenchFailure(f"APPEND to {folder} lost messages")
    return time.perf_counter() - started


@contextlib.contextmanager
def servers(workdir: Path) -> Iterator[tuple[Dovecot, SmtpSink]]:
    with Dovecot(workdir / "dovecot") as dovecot, SmtpSink() as sink:
        yield dovecot, sink


def run(args: argparse.Namespace) -> list[Result]:
    raws = build_backlog(args.messages, args.seed)
    print(describe_backlog(raws, args.seed), flush=True)
    with tempfile.TemporaryDirectory(prefix="intake-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # Dovecot's processes run as nobody and must reach their files
        with servers(workdir) as (dovecot, sink):
            folders = [f"{INTAKE_FOLDER}{n}" for n in args.daemons] or [INTAKE_FOLDER]
            for folder in [*folders, BARE_FOLDER]:
                print(f"APPEND to {folder}: {load(dovecot, raws, folder):.1f} s", flush=True)
            if args.daemons:
                results = run_daemon_modes(args, workdir, dovecot, sink, raws)
            else:
                results = [run_intake(args, workdir, dovecot, sink, len(raws))]
            if not args.skip_bare:
                results.append(run_bare(args, workdir, dovecot, sink, len(raws)))
    return results


def run_daemon_modes(
    args: argparse.Namespace, workdir: Path, dovecot: Dovecot, sink: SmtpSink, raws: list[bytes]
) -> list[Result]:
    def settings(directory: Path, folder: str, url: str) -> Path:
        return write_settings(directory, dovecot, sink, folder, url)

    with contextlib.ExitStack() as stack:
        postgres = None
        if args.database == "postgres":
            postgres = stack.enter_context(Postgres(workdir / "postgres"))
        results = []
        for daemons in args.daemons:
            try:
                done = run_daemons(
                    daemons,
                    len(raws),
                    workdir / f"daemons-{daemons}",
                    settings,
                    sink,
                    dovecot,
                    f"{INTAKE_FOLDER}{daemons}",
                    postgres,
                    PASSWORD_ENV,
                    args.timeout,
                )
            except (RuntimeError, TimeoutError) as exc:
                raise BenchFailure(str(exc)) from None
            name = f"intake run x{daemons} ({args.database})"
            results.append(
                Result(name, len(raws), done.seconds, done.cpu_seconds, done.peak_rss_mb)
            )
            print(f"  {name}: {done.seconds:.1f} s", flush=True)
    return results


def print_results(results: list[Result]) -> None:
    print(f"\n{'':<34}{'seconds':>9}{'CPU s':>8}{'msg/s':>9}{'peak RSS':>11}")
    for result in results:
        print(
            f"{result.name:<34}{result.seconds:>9.2f}{result.cpu_seconds:>8.2f}"
            f"{result.rate:>9.1f}{result.max_rss_mb:>8.0f} MB"
        )
        for phase, seconds in result.phases.items():
            print(f"    {phase:<30}{seconds:>9.2f}")
    if len(results) >= 2:
        *ours_all, bare = results
        for ours in ours_all[:-1]:
            print(f"ratio {ours.name} / bare: {ours.rate / bare.rate:.2f}")
        ours = ours_all[-1]
        ratio = ours.rate / bare.rate
        verdict = "met" if ours.rate >= TARGET_RATE and ratio >= TARGET_RATIO else "NOT met"
        print(
            f"\nratio {ours.name} / bare: {ratio:.2f}   (target: >= {TARGET_RATE:.0f} msg/s"
            f" and ratio >= {TARGET_RATIO}: {verdict})"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="backlog size (2000)")
    parser.add_argument("--seed", type=int, default=1, help="backlog random seed (1)")
    parser.add_argument("--timeout", type=float, default=1800, help="per run, seconds (1800)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--skip-bare", action="store_true", help="only run intake")
    parser.add_argument(
        "--daemons",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[],
        help="instead of poll --once: N `intake run` daemons sharing one database, e.g. 1,2",
    )
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    profile = parser.add_mutually_exclusive_group()
    profile.add_argument("--cprofile", help="run intake under cProfile, stats to this file")
    profile.add_argument("--py-spy", help="run intake under py-spy record (raw), to this file")
    args = parser.parse_args()
    if args.messages < 1:
        parser.error("--messages must be at least 1")
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the with-blocks: servers stopped, dirs removed


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    try:
        results = run(args)
    except BenchFailure as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr)
        return 1
    print_results(results)
    if args.json:
        rows = [{**asdict(r), "rate": round(r.rate, 2)} for r in results]
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
