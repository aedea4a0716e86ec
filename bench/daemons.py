"""The daemon mode of bench/ingest: N `intake run` daemons sharing one database on one backlog.

Each run gets its own folder (the same backlog, APPENDed), its own database (a SQLite file, or
a database in one throwaway PostgreSQL cluster) and its own settings: the shipped defaults but
for the servers, with push on. The daemons are started together; the clock stops when the sink
holds both emails of every message and the database says every message is a case and every
email sent. Peak RSS is each daemon's own high-water mark (VmHWM), read before it is stopped.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers import DEFAULT_PASSWORD, Dovecot, Postgres, SmtpSink


@dataclass
class DaemonRun:
    daemons: int
    seconds: float
    cpu_seconds: float  # of all the daemons, their own processes (not their parse workers)
    peak_rss_mb: float  # the largest of the daemons


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _counter(url: str, postgres: Postgres | None, database: str) -> Callable[[str], int]:
    if postgres is not None:
        return lambda sql: int(postgres.psql(sql, database=database) or 0)
    path = url.removeprefix("sqlite://")

    def count(sql: str) -> int:
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
                return int(connection.execute(sql).fetchone()[0])
        except sqlite3.Error:  # not yet created or migrated
            return 0

    return count


def run_daemons(
    daemons: int,
    count: int,
    workdir: Path,
    settings: Callable[[Path, str, str], Path],
    sink: SmtpSink,
    dovecot: Dovecot,
    folder: str,
    postgres: Postgres | None,
    password_env: str,
    timeout: float,
) -> DaemonRun:
    """`settings(directory, folder, database url)` writes the settings file and returns it."""
    workdir.mkdir(parents=True, exist_ok=True)
    name = f"bench_{daemons}_daemons"
    url = postgres.create_database(name) if postgres else f"sqlite://{workdir / 'intake.sqlite3'}"
    config = settings(workdir, folder, url)
    count_rows = _counter(url, postgres, name)
    sink.clear()
    env = {**os.environ, password_env: DEFAULT_PASSWORD}
    started = time.perf_counter()
    processes: list[subprocess.Popen[bytes]] = []
    for n in range(daemons):
        with (workdir / f"daemon{n}.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "intake", "--config", str(config), "run"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,
                )
            )
    try:
        done = False
        while not done:
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{daemons} daemon(s): not done after {timeout:.0f} s")
            if any(process.poll() is not None for process in processes):
                raise RuntimeError(f"a daemon exited early; see {workdir}/daemon*.log")
            time.sleep(0.05)
            done = len(sink.messages) >= 2 * count and _finished(count_rows, count)
        seconds = time.perf_counter() - started
        peak = max(_peak_rss_mb(process.pid) for process in processes)
        cpu = sum(_cpu_seconds(process.pid) for process in processes)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
    if dovecot.uids(folder):
        raise RuntimeError(f"{daemons} daemon(s) left mail in {folder}")
    return DaemonRun(daemons, seconds, cpu, peak)


def _finished(count_rows: Callable[[str], int], count: int) -> bool:
    checks: list[tuple[str, Any]] = [
        ("SELECT COUNT(*) FROM ticket", count),
        ("SELECT COUNT(*) FROM outbound_message WHERE state = 'sent'", 2 * count),
    ]
    return all(count_rows(sql) == want for sql, want in checks)
