"""Self-signed TLS certificates for the test servers, and client contexts that trust them."""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
from pathlib import Path


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
