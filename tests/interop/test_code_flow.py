"""Authorization code flow with PKCE, driven by authlib, tokens checked with PyJWT."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuthError

from conftest import API_RESOURCE, SCOPE, USERNAME, Flow, Server
from oidc_browser import Browser


def test_discovery_describes_this_issuer(server: Server) -> None:
    md = server.metadata
    assert md["issuer"] == server.issuer
    for name in ["authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint",
                 "revocation_endpoint", "end_session_endpoint"]:  # fmt: skip
        assert md[name].startswith(server.issuer + "/"), (name, md[name])
    assert "S256" in md["code_challenge_methods_supported"]
    assert "code" in md["response_types_supported"]
    assert md.get("authorization_response_iss_parameter_supported") is True
    jwks = requests.get(md["jwks_uri"], timeout=10).json()
    assert {k["kty"] for k in jwks["keys"]} >= {"EC", "RSA"}
    assert all("kid" in k and "d" not in k for k in jwks["keys"]), "JWKS must hold public keys with kid only"


def check_redirect(server: Server, flow: Flow) -> None:
    """The redirect to the client: a code, our state back, and iss = the issuer (RFC 9207)."""
    params = flow.authorization.params
    assert flow.authorization.signed_in, "a new browser must be asked to sign in"
    assert params.get("code")
    assert params.get("state") == flow.state
    assert params.get("iss") == server.issuer


def check_access_token(server: Server, flow: Flow) -> dict:
    token = flow.token["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header.get("kid")
    claims = server.decode_access_token(token, audience=flow.client.resource)
    assert claims["iss"] == server.issuer
    assert claims["sub"] == server.sub
    assert claims["client_id"] == flow.client.client_id
    assert set(claims["scope"].split()) == set(SCOPE.split())
    assert claims["sid"] and claims["jti"]
    now = time.time()
    assert claims["iat"] <= now + 5 < claims["exp"]
    assert now - 120 <= claims["auth_time"] <= claims["iat"]
    return claims


def check_id_token(server: Server, flow: Flow, access_claims: dict) -> dict:
    token = flow.token["id_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header.get("typ") == "JWT"
    claims = server.decode_id_token(token, client_id=flow.client.client_id)
    assert claims["nonce"] == flow.nonce
    assert claims["sub"] == access_claims["sub"]
    assert claims["sid"] == access_claims["sid"]
    return claims


def test_confidential_client_code_flow(server: Server) -> None:
    client = server.confidential
    # No resource registered: the default audience is the IdP's userinfo endpoint.
    assert client.registration["default_resource"] is None
    assert client.resource == f"{server.issuer}/userinfo"
    flow = server.code_flow(client)
    check_redirect(server, flow)
    assert flow.token["token_type"].lower() == "bearer"
    assert flow.token["refresh_token"], "offline_access was granted, so a refresh token is due"
    access = check_access_token(server, flow)
    check_id_token(server, flow, access)

    # The token does not validate for another audience.
    with pytest.raises(jwt.InvalidAudienceError):
        server.decode_access_token(flow.token["access_token"], audience=API_RESOURCE)

    # Userinfo, called as a protected resource by authlib's session.
    resp = flow.oauth.get(server.metadata["userinfo_endpoint"], timeout=10)
    assert resp.status_code == 200, resp.text
    info = resp.json()
    assert info["sub"] == server.sub
    assert info.get("preferred_username") == USERNAME

    # And with a made-up token it refuses (RFC 6750).
    bad = requests.get(
        server.metadata["userinfo_endpoint"], headers={"Authorization": "Bearer not-a-token"}, timeout=10
    )
    assert bad.status_code == 401
    assert bad.headers.get("WWW-Authenticate", "").lower().startswith("bearer")


def test_public_client_code_flow_with_resource(server: Server) -> None:
    client = server.public
    oauth = server.oauth(client)
    assert oauth.token_endpoint_auth_method == "none"
    flow = server.code_flow(client, resource=API_RESOURCE)
    check_redirect(server, flow)
    # Redirected to the port the native app listens on, not the registered port-less URI.
    assert flow.authorization.callback_url.startswith(client.redirect_uri + "?")
    access = check_access_token(server, flow)
    # The API, and (openid was granted) the userinfo endpoint: RFC 7519 §4.1.3 allows a list.
    assert access["aud"] == [API_RESOURCE, f"{server.issuer}/userinfo"]
    check_id_token(server, flow, access)
    assert flow.token["refresh_token"]

    # The same browser asking again is not asked to sign in and stays in the same session.
    again = server.code_flow(client, browser=flow.browser, resource=API_RESOURCE)
    assert not again.authorization.signed_in, again.authorization.describe()
    assert again.authorization.params["state"] == again.state != flow.state
    claims = server.decode_id_token(again.token["id_token"], client.client_id)
    assert claims["sid"] == access["sid"]
    assert claims["nonce"] == again.nonce


def test_wrong_code_verifier_is_refused(server: Server) -> None:
    client = server.confidential
    oauth, _, result, state, _, verifier = server.start_authorization(client)
    wrong = verifier[::-1]
    assert wrong != verifier
    with pytest.raises(OAuthError) as err:
        oauth.fetch_token(authorization_response=result.callback_url, state=state, code_verifier=wrong)
    assert err.value.error == "invalid_grant"


def test_code_is_single_use(server: Server) -> None:
    client = server.public
    oauth, _, result, state, _, verifier = server.start_authorization(client)
    oauth.fetch_token(authorization_response=result.callback_url, state=state, code_verifier=verifier)
    with pytest.raises(OAuthError) as err:
        server.oauth(client).fetch_token(
            authorization_response=result.callback_url, state=state, code_verifier=verifier
        )
    assert err.value.error == "invalid_grant"


def test_code_is_bound_to_its_client(server: Server) -> None:
    """A code issued to the public client cannot be redeemed by the confidential one."""
    oauth, _, result, state, _, verifier = server.start_authorization(server.public)
    other = server.oauth(server.confidential, redirect_uri=server.public.redirect_uri)
    with pytest.raises(OAuthError) as err:
        other.fetch_token(authorization_response=result.callback_url, state=state, code_verifier=verifier)
    assert err.value.error == "invalid_grant"


def test_missing_pkce_is_an_error_at_the_redirect_uri(server: Server) -> None:
    """RFC 7636 §4.4.1: without code_challenge the server answers invalid_request."""
    oauth = server.oauth(server.confidential)
    url, state = oauth.create_authorization_url(server.metadata["authorization_endpoint"])  # no verifier
    assert "code_challenge" not in url
    result = Browser().authorize(url, server.confidential.redirect_uri, USERNAME, server.password)
    assert result.params.get("error") == "invalid_request", result.callback_url
    assert "code" not in result.params
    assert result.params.get("state") == state
    assert result.params.get("iss") == server.issuer


def test_unregistered_redirect_uri_is_not_followed(server: Server) -> None:
    """RFC 6749 §4.1.2.1: with an invalid redirect_uri the server must not redirect to it."""
    evil = "http://127.0.0.1/evil/callback"
    oauth = server.oauth(server.confidential, redirect_uri=evil)
    url, _ = oauth.create_authorization_url(server.metadata["authorization_endpoint"], code_verifier="x" * 64)
    resp = requests.get(url, allow_redirects=False, timeout=10)
    assert resp.status_code == 400, (resp.status_code, resp.headers)
    assert "evil" not in resp.headers.get("Location", "")


def test_unregistered_resource_is_invalid_target(server: Server) -> None:
    """RFC 8707 §2: a resource the client may not have is refused with invalid_target."""
    oauth, _, result, state, _, _ = server.start_authorization(server.public, resource="https://other.example")
    assert result.params.get("error") == "invalid_target", result.callback_url
    assert "code" not in result.params
    assert result.params.get("state") == state


def test_prompt_none_without_session_is_login_required(server: Server) -> None:
    """OIDC Core §3.1.2.6: prompt=none and nobody signed in: login_required, no login page."""
    oauth = server.oauth(server.public)
    url, state = oauth.create_authorization_url(
        server.metadata["authorization_endpoint"], code_verifier=generate_token(64), prompt="none"
    )
    resp = requests.get(url, allow_redirects=False, timeout=10)
    assert resp.is_redirect, resp.status_code
    location = resp.headers["Location"]
    assert location.startswith(server.public.redirect_uri + "?"), location
    params = dict(parse_qsl(urlsplit(location).query))
    assert params["error"] == "login_required"
    assert params["state"] == state
