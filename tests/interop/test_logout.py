"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) ends the session for real."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuthError

from conftest import CONFIDENTIAL_POST_LOGOUT, Server


def test_logout_with_id_token_hint_ends_the_session(server: Server) -> None:
    client = server.confidential
    flow = server.code_flow(client)
    rt = flow.token["refresh_token"]
    userinfo = server.metadata["userinfo_endpoint"]
    assert flow.oauth.get(userinfo, timeout=10).status_code == 200

    # The browser that holds the session goes to the end-session endpoint.
    resp = flow.browser.http.get(
        server.metadata["end_session_endpoint"],
        params={"id_token_hint": flow.token["id_token"]},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 200, (resp.status_code, resp.text[:500])

    with pytest.raises(OAuthError) as err:
        server.oauth(client).refresh_token(refresh_token=rt)
    assert err.value.error == "invalid_grant"

    # The access token is still a well-formed, unexpired JWT, but the IdP's own resource
    # (userinfo) checks the session behind it.
    assert flow.oauth.get(userinfo, timeout=10).status_code == 401

    # And the browser has to sign in again.
    again = server.code_flow(client, browser=flow.browser)
    assert again.authorization.signed_in, again.authorization.describe()
    new_sid = server.decode_id_token(again.token["id_token"], client.client_id)["sid"]
    old_sid = server.decode_id_token(flow.token["id_token"], client.client_id)["sid"]
    assert new_sid != old_sid


def test_logout_without_cookie_redirects_to_registered_uri_with_state(server: Server) -> None:
    """The hint alone names the session (e.g. a back-end logout call from the RP)."""
    client = server.confidential
    flow = server.code_flow(client)
    resp = requests.get(
        server.metadata["end_session_endpoint"],
        params={
            "id_token_hint": flow.token["id_token"],
            "post_logout_redirect_uri": CONFIDENTIAL_POST_LOGOUT,
            "state": "bye-123",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert resp.is_redirect, (resp.status_code, resp.text[:500])
    location = resp.headers["Location"]
    assert location.split("?")[0] == CONFIDENTIAL_POST_LOGOUT
    assert parse_qs(urlsplit(location).query)["state"] == ["bye-123"]
    with pytest.raises(OAuthError) as err:
        server.oauth(client).refresh_token(refresh_token=flow.token["refresh_token"])
    assert err.value.error == "invalid_grant"


def test_logout_refuses_unregistered_post_logout_redirect(server: Server) -> None:
    flow = server.code_flow(server.confidential)
    resp = requests.get(
        server.metadata["end_session_endpoint"],
        params={
            "id_token_hint": flow.token["id_token"],
            "post_logout_redirect_uri": "http://127.0.0.1/evil",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 400
    assert "Location" not in resp.headers
