"""One Ostiary server for the whole test session, set up only through its CLI.

`server` makes a temporary directory with a fresh SQLite database, creates a user, a public
client and a confidential client with `ostiary user add` / `ostiary client add`, starts
`ostiary serve --listen 127.0.0.1:0`, reads the port from the one line it prints on stdout,
waits for /healthz, and stops it with SIGTERM at the end (a non-zero exit then is an error).

Every test signs in with its own `Browser` (its own cookie jar), so each has its own IdP
session and tests do not depend on each other's logins, refreshes or logouts.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from oidc_browser import AuthorizationResult, Browser

SCOPE = "openid profile offline_access"
USERNAME = "alice"
# A resource server identifier (RFC 8707) registered for the public client.
API_RESOURCE = "https://api.interop.test"
CONFIDENTIAL_REDIRECT = "http://127.0.0.1/interop/callback"
CONFIDENTIAL_POST_LOGOUT = "http://127.0.0.1/interop/signed-out"
# The public (native) client registers its loopback redirect without a port and uses one
# picked at run time, as RFC 8252 §7.3 allows.
PUBLIC_REDIRECT_REGISTERED = "http://127.0.0.1/native/callback"
PUBLIC_REDIRECT = "http://127.0.0.1:53682/native/callback"

READY_LINE = re.compile(r"^ostiary listening on (http://127\.0\.0\.1:(\d+)) \(issuer (\S+)\)$")
STARTUP_TIMEOUT = 30.0  # seconds to print the listening line
HEALTH_TIMEOUT = 10.0  # seconds for /healthz to answer 200
STOP_TIMEOUT = 15.0  # seconds to exit after SIGTERM
HTTP_TIMEOUT = 10
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

_server_log: Path | None = None


@dataclass
class Client:
    client_id: str
    client_secret: str | None
    redirect_uri: str  # the one sent in authorization requests
    resource: str  # the audience its access tokens should carry
    registration: dict  # what `ostiary client add --json` printed

    @property
    def auth_method(self) -> str:
        return "none" if self.client_secret is None else "client_secret_basic"


@dataclass
class Flow:
    """A completed authorization code flow: what the client sent, got back and now holds."""

    client: Client
    oauth: OAuth2Session
    browser: Browser
    authorization: AuthorizationResult
    state: str
    nonce: str
    code_verifier: str
    token: dict


@dataclass
class Server:
    bin: str
    db_url: str
    workdir: Path
    log_path: Path
    base_url: str
    issuer: str
    metadata: dict
    password: str
    sub: str  # as printed by `ostiary user add`
    confidential: Client
    public: Client
    jwks: jwt.PyJWKClient

    # --- the CLI --------------------------------------------------------------------------

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return run_cli(self.bin, *args, input=input)

    # --- the client side --------------------------------------------------------------------

    def oauth(self, client: Client, **kwargs) -> OAuth2Session:
        """An authlib client for `client`, configured from discovery."""
        kwargs.setdefault("token_endpoint_auth_method", client.auth_method)
        kwargs.setdefault("redirect_uri", client.redirect_uri)
        return OAuth2Session(
            client_id=client.client_id,
            client_secret=client.client_secret,
            scope=SCOPE,
            code_challenge_method="S256",
            token_endpoint=self.metadata["token_endpoint"],
            default_timeout=HTTP_TIMEOUT,
            **kwargs,
        )

    def start_authorization(
        self, client: Client, browser: Browser | None = None, **params
    ) -> tuple[OAuth2Session, Browser, AuthorizationResult, str, str, str]:
        """Builds the authorization URL with authlib and lets a browser follow it.
        Returns (oauth, browser, result, state, nonce, code_verifier)."""
        oauth = self.oauth(client)
        browser = browser or Browser()
        code_verifier = generate_token(64)
        nonce = generate_token(24)
        url, state = oauth.create_authorization_url(
            self.metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce, **params
        )
        result = browser.authorize(url, client.redirect_uri, USERNAME, self.password)
        return oauth, browser, result, state, nonce, code_verifier

    def code_flow(self, client: Client, browser: Browser | None = None, **params) -> Flow:
        """The whole authorization code flow with PKCE, ending with authlib's `fetch_token`."""
        oauth, browser, result, state, nonce, verifier = self.start_authorization(client, browser, **params)
        assert "error" not in result.params, f"authorization failed: {result.callback_url}\n{result.describe()}"
        token = oauth.fetch_token(
            authorization_response=result.callback_url, state=state, code_verifier=verifier
        )
        return Flow(client, oauth, browser, result, state, nonce, verifier, dict(token))

    def userinfo(self, access_token: str) -> requests.Response:
        return requests.get(
            self.metadata["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=HTTP_TIMEOUT,
        )

    # --- validation with PyJWT ----------------------------------------------------------------

    def decode_access_token(self, token: str, audience: str) -> dict:
        key = self.jwks.get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            key.key,
            algorithms=["ES256"],
            audience=audience,
            issuer=self.issuer,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
        )

    def decode_id_token(self, token: str, client_id: str) -> dict:
        key = self.jwks.get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=self.issuer,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )


def run_cli(bin: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [bin, *args], input=input, capture_output=True, text=True, timeout=60, env=_clean_env()
    )


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without any OSTIARY_* settings of the person running the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTIARY_")}
    env.update(extra)
    return env


def _ostiary_bin() -> str:
    path = os.environ.get("OSTIARY_BIN")
    if not path:
        pytest.fail("OSTIARY_BIN is not set: run scripts/interop.sh, or point it at target/debug/ostiary")
    if not os.access(path, os.X_OK):
        pytest.fail(f"OSTIARY_BIN={path} is not an executable file")
    return path


def _read_ready_line(proc: subprocess.Popen, timeout: float) -> str:
    """The first stdout line, waiting at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"ostiary serve printed nothing in {timeout} s")
            if sel.select(remaining):
                return proc.stdout.readline()


def _wait_healthy(base_url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ostiary serve exited with {proc.returncode} before /healthz answered")
        try:
            resp = requests.get(f"{base_url}/healthz", timeout=2)
            if resp.status_code == 200:
                return
            last = f"HTTP {resp.status_code}"
        except requests.ConnectionError as e:
            last = repr(e)
        time.sleep(0.05)
    raise TimeoutError(f"/healthz did not answer 200 within {timeout} s (last: {last})")


def _add_client(bin: str, db_url: str, client_id: str, *args: str, env: dict | None = None) -> dict:
    proc = subprocess.run(
        [bin, "client", "add", client_id, "--json", "--database-url", db_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or _clean_env(),
    )
    assert proc.returncode == 0, f"client add {client_id} failed: {proc.stderr}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    global _server_log
    bin = _ostiary_bin()
    workdir = tmp_path_factory.mktemp("ostiary")
    db_url = f"sqlite://{workdir / 'ostiary.db'}"  # an absolute path: sqlite:///tmp/...
    password = secrets.token_urlsafe(18)

    added = run_cli(bin, "user", "add", USERNAME, "--password-stdin", "--database-url", db_url, input=password + "\n")
    assert added.returncode == 0, f"user add failed: {added.stderr}"
    sub_match = re.search(r"\(sub (\S+)\)", added.stdout)
    assert sub_match, f"user add printed no sub: {added.stdout!r}"

    public_reg = _add_client(
        bin, db_url, "interop-native", "--public",
        "--redirect-uri", PUBLIC_REDIRECT_REGISTERED,
        "--resource", API_RESOURCE,
    )  # fmt: skip
    assert "client_secret" not in public_reg

    log_path = workdir / "server.log"
    _server_log = log_path
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [bin, "serve", "--listen", "127.0.0.1:0", "--database-url", db_url],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        # The IdP's cookies are Secure and __Host- prefixed. Browsers send Secure cookies to
        # http://127.0.0.1 (a potentially trustworthy origin); Python's cookie jar does not, and
        # requests rebuilds the jar per request, so no cookie policy can change that. The
        # development-only setting made for exactly this case drops Secure and the prefix.
        env=_clean_env(OSTIARY_DANGEROUS_INSECURE_COOKIES="true"),
    )
    try:
        line = _read_ready_line(proc, STARTUP_TIMEOUT).rstrip("\n")
        match = READY_LINE.match(line)
        assert match, f"unexpected first line from ostiary serve: {line!r}"
        base_url, issuer = match.group(1), match.group(3)
        assert int(match.group(2)) > 0
        _wait_healthy(base_url, proc, HEALTH_TIMEOUT)

        metadata = requests.get(f"{base_url}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT).json()
        assert metadata["issuer"] == issuer

        # The confidential client gets no --resource: its access tokens are then for the IdP's
        # userinfo endpoint, wherever the IdP is served. It is added while the server runs (the
        # CLI and the server share the database).
        confidential_reg = _add_client(
            bin, db_url, "interop-webapp",
            "--redirect-uri", CONFIDENTIAL_REDIRECT,
            "--post-logout-redirect-uri", CONFIDENTIAL_POST_LOGOUT,
        )  # fmt: skip
        assert confidential_reg["client_secret"]

        yield Server(
            bin=bin,
            db_url=db_url,
            workdir=workdir,
            log_path=log_path,
            base_url=base_url,
            issuer=issuer,
            metadata=metadata,
            password=password,
            sub=sub_match.group(1),
            confidential=Client(
                client_id=confidential_reg["client_id"],
                client_secret=confidential_reg["client_secret"],
                redirect_uri=CONFIDENTIAL_REDIRECT,
                resource=f"{issuer}/userinfo",
                registration=confidential_reg,
            ),
            public=Client(
                client_id=public_reg["client_id"],
                client_secret=None,
                redirect_uri=PUBLIC_REDIRECT,
                resource=API_RESOURCE,
                registration=public_reg,
            ),
            jwks=jwt.PyJWKClient(metadata["jwks_uri"], cache_keys=True, timeout=HTTP_TIMEOUT),
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"ostiary serve did not stop within {STOP_TIMEOUT} s of SIGTERM")
        proc.stdout.close()
        log.close()
    assert proc.returncode == 0, f"ostiary serve exited with {proc.returncode} after SIGTERM; log: {log_path}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the end of the server's log to failing tests."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _server_log is not None and _server_log.exists():
        text = ANSI_ESCAPE.sub("", _server_log.read_text(errors="replace"))
        lines = text.splitlines()[-40:]
        report.sections.append(("ostiary serve log (last 40 lines)", "\n".join(lines)))
