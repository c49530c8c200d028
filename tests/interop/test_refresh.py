"""Refresh token rotation, replay within the grace window, and revocation (RFC 7009)."""

from __future__ import annotations

import pytest
import requests
from authlib.integrations.requests_client import OAuthError

from conftest import Server


def test_refresh_rotates_and_replay_in_grace_window_is_idempotent(server: Server) -> None:
    client = server.confidential
    flow = server.code_flow(client)
    old_rt = flow.token["refresh_token"]
    first = server.decode_access_token(flow.token["access_token"], client.resource)

    refreshed = dict(flow.oauth.refresh_token(refresh_token=old_rt))
    new_rt = refreshed["refresh_token"]
    assert new_rt and new_rt != old_rt, "refresh tokens rotate on every use"
    claims = server.decode_access_token(refreshed["access_token"], client.resource)
    assert claims["sid"] == first["sid"] and claims["sub"] == first["sub"]
    assert claims["jti"] != first["jti"]

    # A client that lost the response (a retry, a second tab) presents the old token again
    # within the grace window: it gets the same successor, and the session lives on.
    replayed = dict(server.oauth(client).refresh_token(refresh_token=old_rt))
    assert replayed["refresh_token"] == new_rt
    server.decode_access_token(replayed["access_token"], client.resource)

    newer = dict(server.oauth(client).refresh_token(refresh_token=new_rt))
    assert newer["refresh_token"] not in (old_rt, new_rt)


def test_public_client_refreshes_without_a_secret(server: Server) -> None:
    client = server.public
    flow = server.code_flow(client, resource=client.resource)
    refreshed = dict(flow.oauth.refresh_token(refresh_token=flow.token["refresh_token"]))
    assert refreshed["refresh_token"] != flow.token["refresh_token"]
    claims = server.decode_access_token(refreshed["access_token"], client.resource)
    assert claims["client_id"] == client.client_id


def test_refresh_with_client_secret_post(server: Server) -> None:
    client = server.confidential
    flow = server.code_flow(client)
    oauth = server.oauth(client, token_endpoint_auth_method="client_secret_post")
    refreshed = dict(oauth.refresh_token(refresh_token=flow.token["refresh_token"]))
    server.decode_access_token(refreshed["access_token"], client.resource)


def test_refresh_token_is_bound_to_its_client(server: Server) -> None:
    flow = server.code_flow(server.confidential)
    with pytest.raises(OAuthError) as err:
        server.oauth(server.public).refresh_token(refresh_token=flow.token["refresh_token"])
    assert err.value.error == "invalid_grant"


def test_revoked_refresh_token_cannot_be_used(server: Server) -> None:
    client = server.confidential
    flow = server.code_flow(client)
    rt = flow.token["refresh_token"]
    resp = flow.oauth.revoke_token(
        server.metadata["revocation_endpoint"], token=rt, token_type_hint="refresh_token"
    )
    assert resp.status_code == 200, resp.text
    with pytest.raises(OAuthError) as err:
        server.oauth(client).refresh_token(refresh_token=rt)
    assert err.value.error == "invalid_grant"


def test_public_client_revokes_its_refresh_token(server: Server) -> None:
    client = server.public
    flow = server.code_flow(client, resource=client.resource)
    rt = flow.token["refresh_token"]
    resp = flow.oauth.revoke_token(server.metadata["revocation_endpoint"], token=rt)
    assert resp.status_code == 200, resp.text
    with pytest.raises(OAuthError) as err:
        server.oauth(client).refresh_token(refresh_token=rt)
    assert err.value.error == "invalid_grant"


def test_revoked_access_token_is_refused_by_userinfo(server: Server) -> None:
    client = server.confidential
    flow = server.code_flow(client)
    userinfo = server.metadata["userinfo_endpoint"]
    assert flow.oauth.get(userinfo, timeout=10).status_code == 200
    resp = flow.oauth.revoke_token(
        server.metadata["revocation_endpoint"], token=flow.token["access_token"], token_type_hint="access_token"
    )
    assert resp.status_code == 200, resp.text
    assert flow.oauth.get(userinfo, timeout=10).status_code == 401
    # Revoking the access token leaves the refresh token alone.
    refreshed = dict(server.oauth(client).refresh_token(refresh_token=flow.token["refresh_token"]))
    assert server.userinfo(refreshed["access_token"]).status_code == 200


def test_revoking_an_unknown_token_is_not_an_error(server: Server) -> None:
    """RFC 7009 §2.2: invalid tokens do not cause an error response."""
    resp = server.oauth(server.confidential).revoke_token(
        server.metadata["revocation_endpoint"], token="no-such-token", token_type_hint="refresh_token"
    )
    assert resp.status_code == 200, resp.text


def test_revocation_needs_client_authentication(server: Server) -> None:
    client = server.confidential
    resp = requests.post(
        server.metadata["revocation_endpoint"],
        data={"token": "whatever"},
        auth=(client.client_id, "wrong-secret"),
        timeout=10,
    )
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "invalid_client"
