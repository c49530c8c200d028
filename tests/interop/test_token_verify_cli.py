"""`ostiary token verify` on tokens that the server issued to an independent client."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from conftest import Server

TEN_YEARS = 10 * 365 * 24 * 3600


@pytest.fixture(scope="module")
def issued(server: Server) -> tuple[str, dict]:
    """An access token from a real code flow, and its claims as PyJWT decoded them."""
    flow = server.code_flow(server.confidential)
    token = flow.token["access_token"]
    return token, server.decode_access_token(token, server.confidential.resource)


def verify(server: Server, token: str, *args: str, audience: str | None = None, jwks: str | None = None):
    proc = server.cli(
        "token", "verify", token,
        "--jwks", jwks or server.metadata["jwks_uri"],
        "--issuer", server.issuer,
        "--audience", audience or server.confidential.resource,
        *args,
    )  # fmt: skip
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"token verify printed no JSON (exit {proc.returncode}): {proc.stdout!r} {proc.stderr!r}")
    return proc.returncode, out


def test_valid_token(server: Server, issued) -> None:
    token, claims = issued
    code, out = verify(server, token, "--algorithms", "ES256")
    assert code == 0, out
    for name in ["iss", "sub", "exp", "iat", "jti", "client_id", "scope", "sid"]:
        assert out[name] == claims[name], name
    as_list = lambda aud: aud if isinstance(aud, list) else [aud]  # noqa: E731 (a string or a list, RFC 7519 §4.1.3)
    assert as_list(out["aud"]) == as_list(claims["aud"])


def test_valid_token_with_jwks_file(server: Server, issued, tmp_path) -> None:
    token, claims = issued
    path = tmp_path / "jwks.json"
    path.write_text(requests.get(server.metadata["jwks_uri"], timeout=10).text)
    code, out = verify(server, token, jwks=str(path))
    assert code == 0, out
    assert out["jti"] == claims["jti"]


def test_valid_token_read_from_stdin(server: Server, issued) -> None:
    token, claims = issued
    proc = server.cli(
        "token", "verify", "-", "--jwks", server.metadata["jwks_uri"], "--issuer", server.issuer,
        "--audience", server.confidential.resource, input=token + "\n",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["jti"] == claims["jti"]


def test_wrong_audience(server: Server, issued) -> None:
    code, out = verify(server, issued[0], audience="https://someone-else.example")
    assert code == 1
    assert out["valid"] is False
    assert out["reason"] == "wrong_audience", out


def test_expired(server: Server, issued) -> None:
    token, claims = issued
    code, out = verify(server, token, "--now", str(claims["exp"] + TEN_YEARS))
    assert code == 1
    assert out["valid"] is False
    assert out["reason"] == "expired", out


def test_valid_just_before_expiry(server: Server, issued) -> None:
    token, claims = issued
    code, out = verify(server, token, "--now", str(claims["exp"] - 1), "--leeway", "0")
    assert code == 0, out


def test_tampered_payload(server: Server, issued) -> None:
    token, claims = issued
    header, _, signature = token.split(".")
    forged = dict(claims, sub="mallory")
    payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    code, out = verify(server, f"{header}.{payload}.{signature}")
    assert code == 1
    assert out["reason"] == "bad_signature", out


def test_wrong_issuer(server: Server, issued) -> None:
    proc = server.cli(
        "token", "verify", issued[0], "--jwks", server.metadata["jwks_uri"],
        "--issuer", server.issuer + "/other", "--audience", server.confidential.resource,
    )  # fmt: skip
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["reason"] == "wrong_issuer"


def test_id_token_is_not_an_access_token(server: Server) -> None:
    """An ID token must not pass as an access token (RFC 9068 §4: check typ)."""
    flow = server.code_flow(server.confidential)
    # Issuer, audience (the ID token's is the client_id), key and RS256 all fit; only typ does not.
    code, out = verify(server, flow.token["id_token"], audience=server.confidential.client_id)
    assert code == 1
    assert out["valid"] is False
    assert out["reason"] == "wrong_type", out
