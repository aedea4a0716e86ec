"""TLS for the IMAP and SMTP connections: the system's trust store, or one CA file."""

from __future__ import annotations

import ssl


def tls_context(ca_file: object) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
