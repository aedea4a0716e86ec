"""A throwaway Dovecot IMAP server: its files in a temp directory, started and stopped by tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers.certificates import make_self_signed_cert
from tests.servers.dovecot_config import dovecot_conf
from tests.servers.lifecycle import Server, live_servers, log_tail
from tests.servers.mailboxes import Mailboxes
from tests.servers.ports import LOCALHOST, free_port, port_accepts, wait_for_greeting
from tests.servers.service_user import ServiceUser, make_server_dir, remove_fallback_dir

DEFAULT_USER = "info@example.org"
DEFAULT_PASSWORD = "secret"

# Unix socket paths are limited to 108 bytes; Dovecot's deepest socket under base_dir is about
# 30 characters, so longer base_dirs go to a short temp dir instead.
_MAX_BASE_DIR = 70


def _find_dovecot() -> str:
    found = shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.path.exists(p)), None
    )
    if not found:
        raise RuntimeError("dovecot binary not found (apt-get install -y dovecot-imapd)")
    return found


class Dovecot(Mailboxes, Server):
    """A throwaway Dovecot IMAP server (maildir storage, plain-text passwords).

    Use as a context manager, or call :meth:`start` and :meth:`close`. The processed folder of the
    app is deliberately *not* auto-created: the app has to create it.
    """

    host: str
    port: int
    ssl_port: int | None
    cert_path: Path | None
    key_path: Path | None
    users: dict[str, str]
    default_user: str
    root: Path

    def __init__(
        self,
        directory: Path,
        *,
        users: dict[str, str] | None = None,
        tls: bool = False,
        advertise_move: bool = True,
        advertise_idle: bool = True,
        introspection_url: str | None = None,
    ) -> None:
        self.users = dict(users) if users else {DEFAULT_USER: DEFAULT_PASSWORD}
        for login, password in self.users.items():
            if any(c in login + password for c in ":\n\r") or not login:
                raise ValueError(f"unsupported login or password for {login!r}")
        self.default_user = next(iter(self.users))
        self.host = LOCALHOST
        self.tls = tls
        self.introspection_url = introspection_url  # XOAUTH2/OAUTHBEARER against this endpoint
        self.hidden = frozenset(
            name
            for name, shown in (("MOVE", advertise_move), ("IDLE", advertise_idle))
            if not shown
        )
        self._user = ServiceUser.pick()
        self._directory = Path(directory)
        self.root, self._root_is_fallback = make_server_dir(self._directory, "dovecot-")
        self._short_base_dir: Path | None = None
        self.port = free_port()
        self.ssl_port = free_port() if tls else None
        self.cert_path = self.key_path = None
        if tls:
            self.cert_path, self.key_path = make_self_signed_cert(self.root / "tls")
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._prepare_tree()
        live_servers.add(self)

    # -- layout --------------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def base_dir(self) -> Path:
        return self._short_base_dir or self.root / "run"

    def home(self, user: str | None = None) -> Path:
        return self.root / "home" / (user or self.default_user)

    def maildir(self, user: str | None = None) -> Path:
        """The user's Maildir (INBOX) on disk."""
        return self.home(user) / "Maildir"

    def _prepare_tree(self) -> None:
        if len(str(self.root / "run")) > _MAX_BASE_DIR:
            self._short_base_dir = Path(tempfile.mkdtemp(prefix="dcv-"))
            self._short_base_dir.chmod(0o755)
        for sub in (self.base_dir, self.root / "state"):
            sub.mkdir(exist_ok=True)
            sub.chmod(0o755)
        homes = self.root / "home"
        homes.mkdir(exist_ok=True)
        self._user.chown(homes)
        passwd = self.root / "passwd"
        passwd.write_text(
            "".join(f"{login}:{{PLAIN}}{pw}::::::\n" for login, pw in self.users.items())
        )
        passwd.chmod(0o644)

    def _config(self) -> str:
        tls = None
        if self.tls:
            assert self.cert_path is not None and self.key_path is not None
            tls = (self.cert_path, self.key_path)
        return dovecot_conf(
            root=self.root,
            base_dir=self.base_dir,
            log_path=self.log_path,
            port=self.port,
            ssl_port=self.ssl_port,
            user=self._user,
            tls=tls,
            hidden=self.hidden,
            introspection_url=self.introspection_url,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start Dovecot and wait (up to ~10 s) until the IMAP greeting answers.

        On the very first start a port taken by someone else meanwhile is replaced by a fresh one
        (up to 3 tries); afterwards the ports stay fixed so :meth:`restart` keeps them.
        """
        if self.running:
            return
        attempts = 1 if self._started_once else 3
        for attempt in range(attempts):
            try:
                self._start_once()
            except RuntimeError as exc:
                if attempt + 1 < attempts and "Address already in use" in str(exc):
                    self.port = free_port()
                    self.ssl_port = free_port() if self.tls else None
                    continue
                raise
            self._started_once = True
            return

    def _start_once(self) -> None:
        self.config_path.write_text(self._config())
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.root / "dovecot.stdout", "ab") as out:
            self._proc = subprocess.Popen(
                [_find_dovecot(), "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() can reap stragglers
            )
        deadline = time.monotonic() + 10.0
        alive = lambda: self.running  # noqa: E731
        ok = wait_for_greeting(self.host, self.port, b"* OK", deadline, alive)
        if ok and self.ssl_port:
            ok = port_accepts(self.host, self.ssl_port, deadline, alive)
        if ok and self.running:
            return
        exited = self._proc.poll() is not None
        self._kill()
        log = ""
        if self.log_path.exists():
            log = self.log_path.read_text(errors="replace")[log_offset:]
        raise RuntimeError(
            f"Dovecot did not {'stay up' if exited else 'answer within 10 s'} on "
            f"{self.host}:{self.port}\n--- dovecot.log ---\n"
            + "\n".join(log.splitlines()[-40:])
            + "\n--- stdout/stderr ---\n"
            + log_tail(self.root / "dovecot.stdout", 20)
        )

    def _kill(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        self._proc = None

    def stop(self) -> None:
        """SIGTERM the master (it stops its children) and wait; SIGKILL the group after 10 s."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self._kill()

    def restart(self) -> None:
        """Stop and start again on the same ports (mail on disk is kept)."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop, and remove directories created outside the caller's directory."""
        self.stop()
        if self._short_base_dir is not None:
            shutil.rmtree(self._short_base_dir, ignore_errors=True)
        if self._root_is_fallback:
            remove_fallback_dir(self._directory, self.root)
        live_servers.discard(self)

    def __repr__(self) -> str:
        return f"<Dovecot {self.host}:{self.port} ssl_port={self.ssl_port} root={self.root}>"

    # -- UIDVALIDITY changes -------------------------------------------------------------------

    def recreate_folder(self, folder: str, user: str | None = None) -> None:
        """Delete (with its messages) and create ``folder`` again, so its UIDVALIDITY changes.

        INBOX cannot be deleted over IMAP, so for INBOX the maildir's messages, UID list and
        indexes are removed on disk; Dovecot then assigns a new UIDVALIDITY on next access.
        """
        if folder.upper() == "INBOX":
            self._reset_inbox_on_disk(user)
            return
        with self.session(user) as imap:
            if imap.folder_exists(folder):
                imap.delete_folder(folder)
            imap.create_folder(folder)

    def _reset_inbox_on_disk(self, user: str | None) -> None:
        maildir = self.maildir(user)
        if not maildir.exists():
            return
        for sub in ("cur", "new", "tmp"):
            for entry in (maildir / sub).glob("*"):
                entry.unlink(missing_ok=True)
        # The next UIDVALIDITY comes from dovecot-uidvalidity (kept), so it is always new.
        for entry in maildir.glob("dovecot*"):
            if entry.is_file() and not entry.name.startswith("dovecot-uidvalidity"):
                entry.unlink(missing_ok=True)
        for entry in maildir.glob("dovecot.list.index*"):
            entry.unlink(missing_ok=True)
