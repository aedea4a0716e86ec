"""Real, throwaway servers for tests and benchmarks.

* :class:`Dovecot` - an IMAP server (Dovecot 2.3) with its own config in a temp directory.
* :class:`SmtpSink` - an aiosmtpd server in a thread that captures what it receives.
* :class:`Postgres` - a PostgreSQL cluster in a temp directory.

Everything listens on 127.0.0.1 on ports picked at run time, so several instances (and several
test processes) can run side by side.

Running as root (as our machines and CI do) needs care: Dovecot's login processes and PostgreSQL's
``initdb`` refuse to run as root, so their processes run as an unprivileged user (``nobody``), and
that user must be able to reach the server's files. pytest's ``tmp_path`` lives under
``/tmp/pytest-of-root``, which is mode 0700, so when the directory you pass is not reachable by
other users the server's files go to a fresh directory under the system temp dir instead (a
symlink in your directory points at it, and :meth:`close` / leaving the ``with`` block removes it).
"""

from __future__ import annotations

import atexit
import contextlib
import email
import email.policy
import grp
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, cast

import imapclient
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "LOCALHOST",
    "CapturedMessage",
    "Dovecot",
    "Postgres",
    "SmtpSink",
    "client_ssl_context",
    "free_port",
    "make_self_signed_cert",
]

LOCALHOST = "127.0.0.1"
DEFAULT_USER = "info@example.org"
DEFAULT_PASSWORD = "secret"

_AS_ROOT = os.geteuid() == 0

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

_port_lock = threading.Lock()
_ports_handed_out: set[int] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now.

    The kernel picks the port; a port is never handed out twice by this process, so servers
    started one after the other before any of them binds do not collide with each other.
    """
    with _port_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((LOCALHOST, 0))
                port = cast(int, sock.getsockname()[1])
            if port not in _ports_handed_out:
                _ports_handed_out.add(port)
                return port
    raise RuntimeError("could not find a free TCP port")


def _san_entries(hostname: str) -> list[str]:
    """subjectAltName entries in OpenSSL syntax: always IP:127.0.0.1 and DNS:localhost."""
    entries = ["IP:127.0.0.1", "DNS:localhost"]
    try:
        extra = f"IP:{ipaddress.ip_address(hostname)}"
    except ValueError:
        extra = f"DNS:{hostname}"
    if extra not in entries:
        entries.append(extra)
    return entries


def make_self_signed_cert(
    directory: Path,
    hostname: str = "127.0.0.1",
) -> tuple[Path, Path]:
    """Write a self-signed certificate and its key into ``directory``; return (cert, key).

    The certificate is valid for IP 127.0.0.1, DNS localhost and ``hostname``, so a client using
    ``ssl.create_default_context(cafile=cert)`` verifies it. Made with the ``openssl`` CLI (an
    EC P-256 key: milliseconds), which scripts/test installs.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    san = ",".join(_san_entries(hostname))
    openssl = shutil.which("openssl")
    if not openssl:
        raise RuntimeError("the openssl command is not installed (scripts/test installs it)")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-sha256",
            "-days",
            "30",
            "-subj",
            f"/CN={hostname}",
            "-keyout",
            str(key_path),
            "-out",
            str(cert_path),
            "-addext",
            f"subjectAltName={san}",
            "-addext",
            "keyUsage=critical,digitalSignature,keyCertSign",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ],
        check=True,
        capture_output=True,
    )
    key_path.chmod(0o644)  # test material; servers running as another user must read it
    return cert_path, key_path


def client_ssl_context(cafile: Path) -> ssl.SSLContext:
    """A verifying client context that trusts exactly ``cafile`` (a self-signed cert)."""
    return ssl.create_default_context(cafile=str(cafile))


@dataclass(frozen=True)
class _ServiceUser:
    """The unprivileged account server processes run as (the current user when not root)."""

    name: str
    group: str
    uid: int
    gid: int

    @classmethod
    def pick(cls) -> _ServiceUser:
        entry = pwd.getpwnam("nobody") if _AS_ROOT else pwd.getpwuid(os.geteuid())
        return cls(entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name, entry.pw_uid, entry.pw_gid)

    def chown(self, path: Path) -> None:
        if _AS_ROOT:
            os.chown(path, self.uid, self.gid)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run as this user (via runuser when we are root)."""
        if not _AS_ROOT:
            return argv
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        return [runuser, "-u", self.name, "--", *argv]


def _others_can_traverse(path: Path) -> bool:
    """True when every directory from / down to ``path`` has the other-execute bit."""
    resolved = path.resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in (resolved, *resolved.parents))


def _make_server_dir(directory: Path, prefix: str) -> tuple[Path, bool]:
    """Create a unique, world-traversable directory for one server instance.

    Returns (path, is_fallback). Inside ``directory`` when the service user can reach it,
    else under the system temp dir (with a symlink from ``directory``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not _AS_ROOT or _others_can_traverse(directory):
        root = Path(tempfile.mkdtemp(prefix=prefix, dir=directory))
        root.chmod(0o755)
        return root, False
    for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        if os.path.isdir(candidate) and _others_can_traverse(Path(candidate)):
            root = Path(tempfile.mkdtemp(prefix=prefix, dir=candidate))
            root.chmod(0o755)
            with contextlib.suppress(OSError):
                (directory / root.name).symlink_to(root)
            return root, True
    raise RuntimeError(f"no directory reachable by unprivileged users for {prefix!r}")


def _remove_fallback_dir(directory: Path, root: Path) -> None:
    """Remove a fallback server dir (see _make_server_dir) and the symlink pointing at it."""
    shutil.rmtree(root, ignore_errors=True)
    link = directory / root.name
    if link.is_symlink():
        link.unlink(missing_ok=True)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


class _Server:
    """A server the tests start and stop: `with Server(...) as server:` starts and closes it."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_live_servers: weakref.WeakSet[_Server] = weakref.WeakSet()


@atexit.register
def _close_leftovers() -> None:
    """Stop servers a crashed benchmark or test run forgot, so no daemons outlive us."""
    for server in list(_live_servers):
        with contextlib.suppress(Exception):
            server.close()


def _wait_for_greeting(
    host: str, port: int, prefix: bytes, deadline: float, alive: Callable[[], bool]
) -> bool:
    """Poll until a TCP server on host:port sends a line starting with ``prefix``.

    Gives up early when ``alive()`` turns false (the server exited, e.g. its port was taken).
    """
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection((host, port), timeout=0.5) as sock:
                sock.settimeout(0.5)
                if sock.recv(256).startswith(prefix):
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def _port_accepts(host: str, port: int, deadline: float, alive: Callable[[], bool]) -> bool:
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


# ---------------------------------------------------------------------------------------------
# Dovecot
# ---------------------------------------------------------------------------------------------

# Dovecot 2.3.19's own post-login capability list. ``imap_capability`` can only replace the list
# (or add with "+"), so to hide MOVE we spell out the rest. The commands keep working; only the
# advertisement changes, which is what clients decide on.
_DOVECOT_CAPABILITIES = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
    "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
    "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW "
    "STATUS=SIZE SAVEDATE LITERAL+ NOTIFY"
)
_CAPABILITIES_WITHOUT_MOVE = " ".join(c for c in _DOVECOT_CAPABILITIES.split() if c != "MOVE")

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


class Dovecot(_Server):
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
    ) -> None:
        self.users = dict(users) if users else {DEFAULT_USER: DEFAULT_PASSWORD}
        for login, password in self.users.items():
            if any(c in login + password for c in ":\n\r") or not login:
                raise ValueError(f"unsupported login or password for {login!r}")
        self.default_user = next(iter(self.users))
        self.host = LOCALHOST
        self.tls = tls
        self.advertise_move = advertise_move
        self._user = _ServiceUser.pick()
        self._directory = Path(directory)
        self.root, self._root_is_fallback = _make_server_dir(self._directory, "dovecot-")
        self._short_base_dir: Path | None = None
        self.port = free_port()
        self.ssl_port = free_port() if tls else None
        self.cert_path = self.key_path = None
        if tls:
            self.cert_path, self.key_path = make_self_signed_cert(self.root / "tls")
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._prepare_tree()
        _live_servers.add(self)

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
        user = self._user
        if self.tls:
            assert self.cert_path is not None and self.key_path is not None
            ssl_settings = (
                f"ssl = yes\nssl_cert = <{self.cert_path}\nssl_key = <{self.key_path}\n"
                "ssl_min_protocol = TLSv1.2\n"
            )
        else:
            ssl_settings = "ssl = no\n"
        capability = (
            "" if self.advertise_move else f"imap_capability = {_CAPABILITIES_WITHOUT_MOVE}\n"
        )
        return f"""# generated by tests/servers.py
base_dir = {self.base_dir}
state_dir = {self.root / "state"}
log_path = {self.log_path}
info_log_path = {self.log_path}
instance_name = intake-test-{self.port}
protocols = imap
listen = {LOCALHOST}
# Login processes refuse to run as root, and chrooting needs root-owned dirs: run every
# unprivileged part as one ordinary user without chroot.
default_internal_user = {user.name}
default_internal_group = {user.group}
default_login_user = {user.name}
first_valid_uid = {min(user.uid, 500)}
first_valid_gid = {min(user.gid, 500)}
{ssl_settings}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
mail_location = maildir:~/Maildir
mail_fsync = never
{capability}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root / "passwd"}
}}
userdb {{
  driver = static
  args = uid={user.uid} gid={user.gid} home={self.root / "home"}/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  prefix =
}}
protocol imap {{
  # Benchmarks open many connections per user; Dovecot's default is 10 per user and IP.
  mail_max_userip_connections = 1000
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {LOCALHOST}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {LOCALHOST}
    port = {self.ssl_port or 0}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No auth penalty: after a failed login Dovecot would otherwise slow down every later login
  # from 127.0.0.1 (up to 15 s), i.e. all tests after a bad-password test.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth-worker {{
  user = {user.name}
}}
"""

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
        ok = _wait_for_greeting(self.host, self.port, b"* OK", deadline, alive)
        if ok and self.ssl_port:
            ok = _port_accepts(self.host, self.ssl_port, deadline, alive)
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
            + _tail(self.root / "dovecot.stdout", 20)
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
            _remove_fallback_dir(self._directory, self.root)
        _live_servers.discard(self)

    def __repr__(self) -> str:
        return f"<Dovecot {self.host}:{self.port} ssl_port={self.ssl_port} root={self.root}>"

    # -- client helpers ------------------------------------------------------------------------

    def client(self, user: str | None = None, *, timeout: float = 10.0) -> imapclient.IMAPClient:
        """A logged-in IMAPClient on the plain port (the caller logs out)."""
        login = user or self.default_user
        imap = imapclient.IMAPClient(self.host, port=self.port, ssl=False, timeout=timeout)
        try:
            imap.login(login, self.users[login])
        except BaseException:
            with contextlib.suppress(Exception):
                imap.shutdown()
            raise
        return imap

    @contextlib.contextmanager
    def session(self, user: str | None = None) -> Iterator[imapclient.IMAPClient]:
        """``with dovecot.session() as imap:`` - a logged-in client, logged out afterwards."""
        imap = self.client(user)
        try:
            yield imap
        finally:
            try:
                imap.logout()
            except Exception:
                with contextlib.suppress(Exception):
                    imap.shutdown()

    def append(self, raw: bytes, folder: str = "INBOX", user: str | None = None) -> None:
        with self.session(user) as imap:
            imap.append(folder, raw)

    def append_many(
        self, raws: Iterable[bytes], folder: str = "INBOX", user: str | None = None
    ) -> int:
        """APPEND every message over one connection; returns how many were appended."""
        count = 0
        with self.session(user) as imap:
            for raw in raws:
                imap.append(folder, raw)
                count += 1
        return count

    def uids(self, folder: str = "INBOX", user: str | None = None) -> list[int]:
        with self.session(user) as imap:
            imap.select_folder(folder, readonly=True)
            return sorted(cast(list[int], imap.search("ALL")))

    def uidvalidity(self, folder: str = "INBOX", user: str | None = None) -> int:
        with self.session(user) as imap:
            status = imap.folder_status(folder, [b"UIDVALIDITY"])
            return int(status[b"UIDVALIDITY"])

    def fetch_all(self, folder: str = "INBOX", user: str | None = None) -> list[bytes]:
        """Every message's raw bytes in UID order, without setting \\Seen (BODY.PEEK[])."""
        result: list[bytes] = []
        with self.session(user) as imap:
            imap.select_folder(folder, readonly=True)
            uids = sorted(cast(list[int], imap.search("ALL")))
            for start in range(0, len(uids), 500):  # keep command lines short
                batch = uids[start : start + 500]
                fetched = imap.fetch(batch, [b"BODY.PEEK[]"])
                result.extend(bytes(fetched[uid][b"BODY[]"]) for uid in batch)
        return result

    def folders(self, user: str | None = None) -> list[str]:
        with self.session(user) as imap:
            return sorted(str(name) for _flags, _delim, name in imap.list_folders())

    def create_folder(self, folder: str, user: str | None = None) -> None:
        with self.session(user) as imap:
            imap.create_folder(folder)

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


# ---------------------------------------------------------------------------------------------
# SMTP sink
# ---------------------------------------------------------------------------------------------


@dataclass
class CapturedMessage:
    """One message as the SMTP sink received it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple[str, int] | None = None
    login: str | None = None  # the AUTH login used, if any
    tls: bool = False  # whether the session was encrypted (STARTTLS or implicit TLS)
    received_at: float = field(default_factory=time.time)

    def parsed(self) -> EmailMessage:
        """The message parsed with ``email.policy.default``.

        SMTP turns every line ending into CRLF on the wire; they are turned back into LF first,
        so ``get_content()`` of a part sent as ``"text\n"`` is ``"text\n"`` again. ``data``
        keeps the exact bytes.
        """
        text = self.data.replace(b"\r\n", b"\n")
        return email.message_from_bytes(text, policy=email.policy.default)


_REPLY_RE = re.compile(r"^[2-5]\d\d[ -]")


class _SinkHandler:
    """aiosmtpd handler: captures messages, injects failures."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.sink._take_failure("rcpt")
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.sink._take_failure("data")
        if reply is not None:
            return reply
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
        peer = session.peer if isinstance(session.peer, tuple) else None
        # session.ssl is only filled in after STARTTLS; the transport knows about implicit TLS too
        transport = server.transport
        encrypted = transport is not None and transport.get_extra_info("ssl_object") is not None
        login = session.auth_data if isinstance(session.auth_data, str) else None
        self.sink._capture(
            CapturedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                data=data,
                peer=cast("tuple[str, int] | None", tuple(peer[:2]) if peer else None),
                login=login,
                tls=encrypted,
            )
        )
        return "250 2.0.0 Message accepted"


class _CountingSMTP(SMTP):
    """Counts sessions that greet (EHLO/HELO) once each.

    aiosmtpd's Controller opens a probe connection of its own on start; counting greetings
    instead of TCP connections leaves it out, and a second EHLO after STARTTLS is not a new
    session.
    """

    def __init__(self, sink: SmtpSink, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sink = sink
        self._greeted = False

    def _count(self) -> None:
        if not self._greeted:
            self._greeted = True
            self._sink._count_connection()

    async def smtp_EHLO(self, hostname: str) -> None:
        self._count()
        await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname: str) -> None:
        self._count()
        await super().smtp_HELO(hostname)


class _SinkController(Controller):
    def __init__(self, sink: SmtpSink, handler: Any, **kwargs: Any) -> None:
        self._sink = sink
        super().__init__(handler, **kwargs)

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # "Requiring AUTH while not requiring TLS" - intended for a local test server.
            warnings.simplefilter("ignore", UserWarning)
            return _CountingSMTP(self._sink, self.handler, **self.SMTP_kwargs)


class SmtpSink(_Server):
    """An SMTP server (aiosmtpd, in its own thread) that keeps every message it accepts."""

    host: str
    port: int
    messages: list[CapturedMessage]
    connections: int

    def __init__(
        self,
        *,
        hostname: str = "127.0.0.1",
        port: int | None = None,
        auth: dict[str, str] | None = None,
        tls_cert: tuple[Path, Path] | None = None,
        implicit_tls: bool = False,
        data_size_limit: int | None = 64 * 1024 * 1024,
    ) -> None:
        if implicit_tls and tls_cert is None:
            raise ValueError("implicit_tls needs tls_cert")
        self.host = hostname
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.auth = dict(auth) if auth is not None else None
        self.tls_cert = tls_cert
        self.implicit_tls = implicit_tls
        self.data_size_limit = data_size_limit
        self.messages = []
        self.connections = 0
        self._cond = threading.Condition()
        self._failures: list[tuple[str, str]] = []  # (stage, reply), consumed front first
        self._controller: _SinkController | None = None
        _live_servers.add(self)

    # -- lifecycle -----------------------------------------------------------------------------

    def _server_ssl_context(self) -> ssl.SSLContext | None:
        if self.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.tls_cert[0]), str(self.tls_cert[1]))
        return context

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        # handled=False makes aiosmtpd send "535 5.7.8 Authentication credentials invalid";
        # handled=True would leave the client waiting for a reply that never comes.
        if isinstance(auth_data, LoginPassword) and self.auth is not None:
            login = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if login in self.auth and self.auth[login] == password:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    def start(self) -> None:
        if self._controller is not None:
            return
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            context = self._server_ssl_context()
            kwargs: dict[str, Any] = {
                "hostname": self.host,
                "port": self.port,
                "server_hostname": "localhost",  # avoids socket.getfqdn(), slow without DNS
                "ready_timeout": 10.0,
                "data_size_limit": self.data_size_limit,
                "enable_SMTPUTF8": True,
            }
            if self.implicit_tls:
                kwargs["ssl_context"] = context
            elif context is not None:
                kwargs["tls_context"] = context
                kwargs["require_starttls"] = False
            if self.auth is not None:
                kwargs.update(
                    authenticator=self._authenticate, auth_required=True, auth_require_tls=False
                )
            controller = _SinkController(self, _SinkHandler(self), **kwargs)
            try:
                controller.start()
            except OSError:
                with contextlib.suppress(Exception):
                    controller.stop(no_assert=True)
                if attempt + 1 < attempts:
                    self.port = free_port()
                    continue
                raise
            self._controller = controller
            return

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    close = stop

    def __repr__(self) -> str:
        return f"<SmtpSink {self.host}:{self.port} messages={len(self.messages)}>"

    # -- state ---------------------------------------------------------------------------------

    def _capture(self, message: CapturedMessage) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def _count_connection(self) -> None:
        with self._cond:
            self.connections += 1

    def _take_failure(self, stage: str) -> str | None:
        with self._cond:
            if self._failures and self._failures[0][0] == stage:
                return self._failures.pop(0)[1]
        return None

    def clear(self) -> None:
        """Forget captured messages, the connection count and pending failures."""
        with self._cond:
            self.messages.clear()
            self.connections = 0
            self._failures.clear()

    def fail_next(
        self,
        count: int,
        reply: str = "451 4.3.0 Try again later",
        *,
        at: Literal["data", "rcpt"] = "data",
    ) -> None:
        """Answer the next ``count`` DATA (or, with ``at="rcpt"``, RCPT) commands with ``reply``."""
        if not _REPLY_RE.match(reply + " "):
            raise ValueError(f"reply must start with an SMTP code: {reply!r}")
        with self._cond:
            self._failures.extend([(at, reply)] * count)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[CapturedMessage]:
        """Block until at least ``count`` messages arrived; return a copy of all of them."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(
                    f"expected {count} messages within {timeout} s, got {len(self.messages)}"
                )
            return list(self.messages)


# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------

_DB_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")
_PG_TOOLS = ("initdb", "pg_ctl", "postgres", "psql")


class Postgres(_Server):
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
        self._user = _ServiceUser.pick()
        self._directory = Path(directory)
        self.root, self._root_is_fallback = _make_server_dir(self._directory, "postgres-")
        self._user.chown(self.root)
        self._running = False
        self._started_once = False
        _live_servers.add(self)

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
        has_runuser = not _AS_ROOT or bool(
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
                f"--- postgres.log ---\n{_tail(self.log_path)}"
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
                "\n# tests/servers.py: throwaway cluster, speed over durability\n"
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
            _remove_fallback_dir(self._directory, self.root)
        _live_servers.discard(self)

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
