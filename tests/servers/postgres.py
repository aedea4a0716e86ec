"""A throwaway PostgreSQL cluster in a temp directory, for the tests that run on PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.servers.lifecycle import Server, live_servers, log_tail
from tests.servers.ports import LOCALHOST, free_port
from tests.servers.service_user import AS_ROOT, ServiceUser, make_server_dir, remove_fallback_dir

_DB_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")
_PG_TOOLS = ("initdb", "pg_ctl", "postgres", "psql")


class Postgres(Server):
    """A throwaway PostgreSQL cluster (trust auth, no fsync) on 127.0.0.1.

    ``initdb`` refuses to run as root, so as root every server-side command runs as ``nobody``
    via ``runuser``. No Unix socket is created (long temp paths exceed the socket path limit);
    clients connect over TCP.
    """

    host: str
    port: int
    root: Path

    def __init__(self, directory: Path) -> None:
        self.host = LOCALHOST
        self.port = free_port()
        self._user = ServiceUser.pick()
        self._directory = Path(directory)
        self.root, self._root_is_fallback = make_server_dir(self._directory, "postgres-")
        self._user.chown(self.root)
        self._running = False
        self._started_once = False
        live_servers.add(self)

    @staticmethod
    def bin_dir() -> Path | None:
        """Where initdb/pg_ctl live: $INTAKE_PG_BINDIR, the newest /usr/lib/postgresql/*/bin,
        or the PATH."""
        candidates: list[Path] = []
        if os.environ.get("INTAKE_PG_BINDIR"):
            candidates.append(Path(os.environ["INTAKE_PG_BINDIR"]))

        def version(path: Path) -> int:
            try:
                return int(path.parent.name)
            except ValueError:
                return 0

        versioned = Path("/usr/lib/postgresql").glob("*/bin")
        candidates.extend(sorted(versioned, key=version, reverse=True))
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).parent)
        for candidate in candidates:
            if all((candidate / tool).exists() for tool in _PG_TOOLS):
                return candidate
        return None

    @staticmethod
    def available() -> bool:
        """The PostgreSQL binaries (and, as root, runuser) are installed."""
        has_runuser = not AS_ROOT or bool(
            shutil.which("runuser") or os.path.exists("/usr/sbin/runuser")
        )
        return Postgres.bin_dir() is not None and has_runuser

    def _tool(self, name: str) -> str:
        bin_dir = self.bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL binaries not found (/usr/lib/postgresql/*/bin, PATH)")
        return str(bin_dir / name)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def _run_as_service_user(self, argv: list[str], timeout: float = 60.0) -> None:
        proc = subprocess.run(
            self._user.command(argv),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{Path(argv[0]).name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n"
                f"--- postgres.log ---\n{log_tail(self.log_path)}"
            )

    def _initdb(self) -> None:
        self._run_as_service_user(
            [
                self._tool("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# tests/servers/postgres.py: throwaway cluster, speed over durability\n"
                f"listen_addresses = '{LOCALHOST}'\n"
                "unix_socket_directories = ''\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_connections = 200\n"
            )

    def start(self) -> None:
        """initdb on first use, then ``pg_ctl start -w`` (returns once it accepts connections)."""
        if self._running:
            return
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        attempts = 1 if self._started_once else 3
        for attempt in range(attempts):
            try:
                self._run_as_service_user(
                    [
                        self._tool("pg_ctl"),
                        "-D",
                        str(self.data_dir),
                        "-l",
                        str(self.log_path),
                        "-o",
                        f"-p {self.port}",
                        "-w",
                        "-t",
                        "30",
                        "start",
                    ]
                )
            except RuntimeError as exc:
                if attempt + 1 < attempts and "already in use" in str(exc):
                    self.port = free_port()
                    continue
                raise
            break
        self._running = self._started_once = True

    def stop(self) -> None:
        if not self._running:
            return
        self._run_as_service_user(
            [self._tool("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"]
        )
        self._running = False

    def close(self) -> None:
        """Stop, and remove the cluster if it lives outside the caller's directory."""
        self.stop()
        if self._root_is_fallback:
            remove_fallback_dir(self._directory, self.root)
        live_servers.discard(self)

    def __repr__(self) -> str:
        return f"<Postgres {self.host}:{self.port} root={self.root}>"

    def url(self, name: str = "postgres") -> str:
        """Tortoise/asyncpg-style URL for database ``name``."""
        return f"postgres://postgres@{self.host}:{self.port}/{name}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql over TCP; return its unaligned, tuples-only output."""
        proc = subprocess.run(
            [
                self._tool("psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout.strip()

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name``; return its URL (postgres://postgres@127.0.0.1:PORT/name)."""
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"unsupported database name {name!r}")
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)
