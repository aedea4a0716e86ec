"""Real, throwaway servers for tests and benchmarks.

* :class:`Dovecot` - an IMAP server (Dovecot 2.3) with its own config in a temp directory
  (``dovecot``, its configuration in ``dovecot_config``, its IMAP helpers in ``mailboxes``).
* :class:`SmtpSink` - an aiosmtpd server in a thread that captures what it receives (``smtp``).
* :class:`Postgres` - a PostgreSQL cluster in a temp directory (``postgres``).
* Self-signed certificates for their TLS (``certificates``) and free ports (``ports``).

Everything listens on 127.0.0.1 on ports picked at run time, so several instances (and several
test processes) can run side by side. As root, the servers' processes run as an unprivileged
user (``service_user`` says how); ``lifecycle`` is what every server shares.
"""

from tests.servers.certificates import client_ssl_context, make_self_signed_cert
from tests.servers.dovecot import DEFAULT_PASSWORD, DEFAULT_USER, Dovecot
from tests.servers.ports import LOCALHOST, free_port
from tests.servers.postgres import Postgres
from tests.servers.smtp import CapturedMessage, SmtpSink

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
