"""A small OAuth2 authority for the tests, on loopback: what Google or Microsoft would be.

It is test code, written to the RFCs it plays (a fixture, not a product): the device flow
(RFC 8628), the code flow with PKCE S256 (RFC 7636), refresh, optionally rotating the refresh
token on every use, and token introspection (RFC 7662) for the servers that check the tokens,
Dovecot's oauth2 passdb and the SMTP sink. The client endpoints are HTTPS with a self-signed
certificate (`ca_file`); introspection, which only Dovecot and the sink call, is plain HTTP on a
second port. The test plays the operator: `approve` a device code, `consent` to a code-flow
page; and the provider's moods: `expire_access_tokens`, `revoke`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.servers.certificates import make_self_signed_cert
from tests.servers.lifecycle import Server, live_servers
from tests.servers.ports import LOCALHOST

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class _Grant:
    account: str
    scope: str


@dataclass
class _Device:
    user_code: str
    scope: str
    grant: _Grant | None = None  # set once the operator approved


@dataclass
class _State:
    access_lifetime: int
    rotate: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    devices: dict[str, _Device] = field(default_factory=dict)  # by device code
    codes: dict[str, tuple[str, str, _Grant]] = field(default_factory=dict)  # challenge, uri
    access: dict[str, tuple[_Grant, float]] = field(default_factory=dict)  # until (time.time)
    refresh: dict[str, _Grant] = field(default_factory=dict)
    refreshes: int = 0
    introspections: int = 0
    inactive_answers: int = 0  # introspections that found the token dead: a login refused
    pending_answers: int = 0  # device-flow polls answered authorization_pending

    def issue(self, grant: _Grant) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        refresh = "rt-" + secrets.token_urlsafe(24)
        self.access[access] = (grant, time.time() + self.access_lifetime)
        self.refresh[refresh] = grant
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_lifetime,
            "refresh_token": refresh,
            "scope": grant.scope,
        }


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        return {key: values[0] for key, values in parse_qs(body).items()}

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        form = self._form()
        state = self.server.state
        with state.lock:
            path = urlsplit(self.path).path
            if path == "/introspect":
                self._json(200, _introspect(state, form.get("token", "")))
            elif path == "/device":
                self._json(200, _device(state, form, self.server.base))
            elif path == "/token":
                self._json(*_token(state, form))
            else:
                self._json(404, {"error": "not_found"})


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _State, base: str) -> None:
        super().__init__((LOCALHOST, 0), _Handler)
        self.state = state
        self.base = base


def _introspect(state: _State, token: str) -> dict[str, Any]:
    state.introspections += 1
    held = state.access.get(token)
    if held is None or held[1] <= time.time():
        state.inactive_answers += 1
        return {"active": False}
    grant = held[0]
    return {"active": True, "username": grant.account, "scope": grant.scope}


def _device(state: _State, form: dict[str, str], base: str) -> dict[str, Any]:
    device_code = "dc-" + secrets.token_urlsafe(16)
    user_code = secrets.token_hex(4).upper()
    state.devices[device_code] = _Device(user_code, form.get("scope", ""))
    return {
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": f"{base}/activate",
        "expires_in": 600,
        "interval": 1,
    }


def _token(state: _State, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    grant_type = form.get("grant_type")
    if grant_type == DEVICE_GRANT:
        device = state.devices.get(form.get("device_code", ""))
        if device is None:
            return 400, {"error": "expired_token"}
        if device.grant is None:
            state.pending_answers += 1
            return 400, {"error": "authorization_pending"}
        del state.devices[form["device_code"]]
        return 200, state.issue(device.grant)
    if grant_type == "authorization_code":
        held_code = state.codes.pop(form.get("code", ""), None)
        if held_code is None:
            return 400, {"error": "invalid_grant", "error_description": "unknown code"}
        challenge, redirect_uri, grant = held_code
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier wrong"}
        if form.get("redirect_uri") != redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        return 200, state.issue(grant)
    if grant_type == "refresh_token":
        refresh = form.get("refresh_token", "")
        grant = state.refresh.get(refresh)
        if grant is None:
            return 400, {"error": "invalid_grant", "error_description": "token revoked"}
        state.refreshes += 1
        answer = state.issue(grant)
        if state.rotate:
            del state.refresh[refresh]
        else:
            del state.refresh[answer.pop("refresh_token")]
        return 200, answer
    return 400, {"error": "unsupported_grant_type"}


class Authority(Server):
    """The authority: `token_url`, `device_url`, `authorization_url` (HTTPS, trust `ca_file`)
    and `introspection_url` (HTTP) on 127.0.0.1."""

    def __init__(self, directory: Path, *, access_lifetime: int = 3600, rotate: bool = False):
        self.state = _State(access_lifetime=access_lifetime, rotate=rotate)
        self.ca_file, self._key = make_self_signed_cert(Path(directory) / "authority-tls")
        self._servers: list[_HttpServer] = []
        self.base = ""
        self.introspection_url = ""
        live_servers.add(self)

    def start(self) -> None:
        secure = _HttpServer(self.state, "")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.ca_file), str(self._key))
        secure.socket = context.wrap_socket(secure.socket, server_side=True)
        self.base = secure.base = f"https://{LOCALHOST}:{secure.server_address[1]}"
        plain = _HttpServer(self.state, self.base)
        self.introspection_url = f"http://{LOCALHOST}:{plain.server_address[1]}/introspect"
        for server in (secure, plain):
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)

    def close(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.shutdown()
            server.server_close()

    @property
    def token_url(self) -> str:
        return f"{self.base}/token"

    @property
    def device_url(self) -> str:
        return f"{self.base}/device"

    @property
    def authorization_url(self) -> str:
        return f"{self.base}/authorize"

    # -- the operator ------------------------------------------------------------------------

    def approve(self, user_code: str, account: str) -> None:
        """The operator typed `user_code` on the activation page, signed in as `account`."""
        with self.state.lock:
            for device in self.state.devices.values():
                if device.user_code == user_code and device.grant is None:
                    device.grant = _Grant(account, device.scope)
                    return
        raise KeyError(f"no device code {user_code} waiting")

    def consent(self, url: str, account: str) -> str:
        """The operator opened the consent page `url` and allowed access as `account`: the
        address the browser is sent to, with the code in it."""
        query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
        if query.get("code_challenge_method") != "S256":
            raise ValueError("the consent page was asked for without PKCE S256")
        code = "ac-" + secrets.token_urlsafe(16)
        grant = _Grant(account, query.get("scope", ""))
        with self.state.lock:
            self.state.codes[code] = (query["code_challenge"], query["redirect_uri"], grant)
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"

    # -- the provider's moods ----------------------------------------------------------------

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working now (the servers refuse it)."""
        with self.state.lock:
            for token, (grant, _until) in list(self.state.access.items()):
                self.state.access[token] = (grant, 0.0)

    def revoke(self, account: str) -> None:
        """The account's refresh and access tokens are revoked (an admin withdrew consent)."""
        with self.state.lock:
            self.state.refresh = {
                t: g for t, g in self.state.refresh.items() if g.account != account
            }
            self.state.access = {
                t: held for t, held in self.state.access.items() if held[0].account != account
            }

    @property
    def refreshes(self) -> int:
        return self.state.refreshes

    @property
    def refused_logins(self) -> int:
        """Logins a server refused because the authority called their token dead."""
        return self.state.inactive_answers

    @property
    def refresh_tokens(self) -> set[str]:
        with self.state.lock:
            return set(self.state.refresh)
