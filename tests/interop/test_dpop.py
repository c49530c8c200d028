"""DPoP (RFC 9449) with proofs made by PyJWT and `cryptography`, not by Ostiary: the code
exchange binds the tokens to the client's key, the refresh token needs that key's proof, and
userinfo takes the bound token only under the DPoP scheme."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from conftest import HTTP_TIMEOUT, Server


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class DpopKey:
    """A client's DPoP key pair and the proofs it signs."""

    def __init__(self, kind: str) -> None:
        if kind == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.private.public_key()))
        self.alg = "ES256" if kind == "ES256" else "EdDSA"

    def thumbprint(self) -> str:
        """RFC 7638: the required members, sorted, no whitespace, SHA-256."""
        required = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}[self.jwk["kty"]]
        canonical = json.dumps({k: self.jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
        return b64url(hashlib.sha256(canonical.encode()).digest())

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode()).digest())
        public = {k: v for k, v in self.jwk.items() if k in ("kty", "crv", "x", "y")}
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"typ": "dpop+jwt", "jwk": public})


def exchange(server: Server, key: DpopKey) -> dict:
    client = server.public
    _, _, result, _, _, verifier = server.start_authorization(client)
    response = requests.post(
        server.metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": result.params["code"],
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
            "client_id": client.client_id,
        },
        headers={"DPoP": key.proof("POST", server.metadata["token_endpoint"])},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()


def refresh(server: Server, refresh_token: str, proof: str | None) -> requests.Response:
    headers = {"DPoP": proof} if proof else {}
    return requests.post(
        server.metadata["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": server.public.client_id},
        headers=headers,
        timeout=HTTP_TIMEOUT,
    )


def test_discovery_lists_the_proof_algorithms(server: Server) -> None:
    algs = server.metadata["dpop_signing_alg_values_supported"]
    assert "ES256" in algs and "EdDSA" in algs


@pytest.mark.parametrize("kind", ["ES256", "EdDSA"])
def test_tokens_are_bound_to_the_key_of_the_proof(server: Server, kind: str) -> None:
    key = DpopKey(kind)
    tokens = exchange(server, key)
    assert tokens["token_type"] == "DPoP"
    claims = server.decode_access_token(tokens["access_token"], server.public.resource)
    assert claims["cnf"] == {"jkt": key.thumbprint()}

    token_endpoint = server.metadata["token_endpoint"]
    # A copy of the refresh token without the key gets nothing, and the owner goes on.
    stolen = refresh(server, tokens["refresh_token"], None)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    other = refresh(server, tokens["refresh_token"], DpopKey(kind).proof("POST", token_endpoint))
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant"
    rotated = refresh(server, tokens["refresh_token"], key.proof("POST", token_endpoint))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["token_type"] == "DPoP"

    # The same proof twice: refused.
    proof = key.proof("POST", token_endpoint)
    assert refresh(server, rotated.json()["refresh_token"], proof).status_code == 200
    replayed = refresh(server, rotated.json()["refresh_token"], proof)
    assert replayed.json()["error"] == "invalid_dpop_proof"


def test_userinfo_takes_the_bound_token_only_with_a_proof(server: Server) -> None:
    key = DpopKey("ES256")
    access_token = exchange(server, key)["access_token"]
    userinfo = server.metadata["userinfo_endpoint"]
    ok = requests.get(
        userinfo,
        headers={"Authorization": f"DPoP {access_token}", "DPoP": key.proof("GET", userinfo, access_token)},
        timeout=HTTP_TIMEOUT,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["sub"] == server.sub
    as_bearer = server.userinfo(access_token)
    assert as_bearer.status_code == 401
    assert "DPoP" in as_bearer.headers["WWW-Authenticate"]
    without_ath = requests.get(
        userinfo,
        headers={"Authorization": f"DPoP {access_token}", "DPoP": key.proof("GET", userinfo)},
        timeout=HTTP_TIMEOUT,
    )
    assert without_ath.status_code == 401
