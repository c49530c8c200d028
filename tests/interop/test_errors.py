"""Token endpoint error responses (RFC 6749 §5.2), seen by a plain HTTP client."""

from __future__ import annotations

import requests

from conftest import Server


def token_request(server: Server, data: dict, **kwargs) -> requests.Response:
    return requests.post(server.metadata["token_endpoint"], data=data, timeout=10, **kwargs)


def check_error(resp: requests.Response, status: int, error: str) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["Content-Type"].split(";")[0].strip() == "application/json"
    assert "no-store" in resp.headers.get("Cache-Control", "")
    body = resp.json()
    assert body["error"] == error, body
    return body


def test_unsupported_grant_type(server: Server) -> None:
    client = server.confidential
    resp = token_request(
        server,
        {"grant_type": "urn:example:bogus", "foo": "bar"},
        auth=(client.client_id, client.client_secret),
    )
    check_error(resp, 400, "unsupported_grant_type")


def test_unsupported_grant_type_public_client(server: Server) -> None:
    resp = token_request(server, {"grant_type": "password", "client_id": server.public.client_id,
                                  "username": "alice", "password": server.password})  # fmt: skip
    check_error(resp, 400, "unsupported_grant_type")


def test_wrong_secret_basic(server: Server) -> None:
    client = server.confidential
    resp = token_request(
        server,
        {"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(client.client_id, client.client_secret + "x"),
    )
    check_error(resp, 401, "invalid_client")
    # §5.2: a client that used the Authorization header gets a matching WWW-Authenticate.
    assert resp.headers.get("WWW-Authenticate", "").lower().startswith("basic")


def test_wrong_secret_post(server: Server) -> None:
    client = server.confidential
    resp = token_request(
        server,
        {"grant_type": "refresh_token", "refresh_token": "x",
         "client_id": client.client_id, "client_secret": "not-the-secret"},
    )  # fmt: skip
    check_error(resp, 401, "invalid_client")


def test_unknown_client(server: Server) -> None:
    resp = token_request(server, {"grant_type": "refresh_token", "refresh_token": "x"}, auth=("nobody", "x"))
    check_error(resp, 401, "invalid_client")


def test_confidential_client_without_secret(server: Server) -> None:
    resp = token_request(
        server, {"grant_type": "refresh_token", "refresh_token": "x", "client_id": server.confidential.client_id}
    )
    check_error(resp, 401, "invalid_client")


def test_invalid_refresh_token(server: Server) -> None:
    client = server.confidential
    resp = token_request(
        server, {"grant_type": "refresh_token", "refresh_token": "garbage"}, auth=(client.client_id, client.client_secret)
    )
    check_error(resp, 400, "invalid_grant")


def test_missing_grant_type(server: Server) -> None:
    client = server.confidential
    resp = token_request(server, {"code": "x"}, auth=(client.client_id, client.client_secret))
    check_error(resp, 400, "invalid_request")
