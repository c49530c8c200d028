//! The token endpoint: codes, client authentication, error format, token contents.

use ostiary_core::audit::AuditKind;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;

/// Gets an authorization code for `client_id` (fresh browser), returning (code, verifier).
async fn code_for(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid profile offline_access"),
        ("nonce", "n-0S6"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        params.retain(|(n, _)| n != name);
        params.push((name, value));
    }
    let redirected = app.authorize(&browser(), &params).await;
    (redirected.param("code").expect("code"), verifier)
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_code_is_single_use_and_its_replay_ends_its_session() {
    let app = spawn_app().await;
    let (code, verifier) = code_for(&app, PUBLIC_CLIENT, &[]).await;
    let first = app.exchange(PUBLIC_CLIENT, &code, &verifier).await;
    assert_eq!(first.status(), StatusCode::OK);
    let tokens: Value = first.json().await.unwrap();
    let replay = app.exchange(PUBLIC_CLIENT, &code, &verifier).await;
    assert_eq!(
        error_of(replay).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let refresh = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        refresh.status(),
        StatusCode::BAD_REQUEST,
        "the refresh token issued from the code is revoked"
    );
    // So is the access token of the first redemption, everywhere.
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        app.userinfo(access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let introspected: Value = app.introspect(access).await.json().await.unwrap();
    assert_eq!(introspected["active"], false);
    // Resource servers learn it from the feed: the code's session ended.
    let sid = claims(access)["sid"].as_str().unwrap().to_owned();
    let feed = app.revocation_feed().await;
    assert!(
        feed["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["sid"] == sid.as_str() && e["reason"] == "authorization_code_replay"),
        "{feed}"
    );
}

#[tokio::test]
async fn a_failed_exchange_leaves_the_code_to_its_holder() {
    let app = spawn_app().await;
    let (code, verifier) = code_for(&app, PUBLIC_CLIENT, &[]).await;
    let wrong = "w".repeat(43);
    assert_eq!(
        error_of(app.exchange(PUBLIC_CLIENT, &code, &wrong).await).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    assert_eq!(
        app.exchange(PUBLIC_CLIENT, &code, &verifier).await.status(),
        StatusCode::OK,
        "one who saw the code but holds no verifier cannot spend it"
    );
    assert!(
        app.audit_of(AuditKind::AuthorizationCodeReplayed)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn an_expired_code_is_refused_without_being_spent_so_its_retry_ends_nothing() {
    let app = spawn_app().await;
    let (code, verifier) = code_for(&app, PUBLIC_CLIENT, &[]).await;
    app.clock.advance(61);
    for _ in 0..2 {
        let (status, error) = error_of(app.exchange(PUBLIC_CLIENT, &code, &verifier).await).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_grant")
        );
    }
    assert!(
        app.audit_of(AuditKind::AuthorizationCodeReplayed)
            .await
            .is_empty()
    );
    assert!(app.audit_of(AuditKind::SessionEnded).await.is_empty());
}

#[tokio::test]
async fn a_malformed_verifier_is_refused_alike_whatever_the_code() {
    let app = spawn_app().await;
    let (live, _) = code_for(&app, PUBLIC_CLIENT, &[]).await;
    let (spent, verifier) = code_for(&app, PUBLIC_CLIENT, &[]).await;
    assert_eq!(
        app.exchange(PUBLIC_CLIENT, &spent, &verifier)
            .await
            .status(),
        StatusCode::OK
    );
    // The answer is the same for a live code, a spent one, another client's and none at all:
    // it tells one who holds only a code nothing about it, and nothing is audited as a replay.
    let mut answers = Vec::new();
    for (client, code) in [
        (PUBLIC_CLIENT, live.as_str()),
        (PUBLIC_CLIENT, spent.as_str()),
        (CONFIDENTIAL_CLIENT, live.as_str()),
        (PUBLIC_CLIENT, "no-such-code"),
    ] {
        answers.push(error_of(app.exchange(client, code, "abc").await).await);
    }
    assert!(
        answers
            .iter()
            .all(|answer| *answer == (StatusCode::BAD_REQUEST, "invalid_request".into())),
        "{answers:?}"
    );
    assert!(
        app.audit_of(AuditKind::AuthorizationCodeReplayed)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_replay_without_the_verifier_is_audited_and_ends_nothing() {
    let app = spawn_app().await;
    let (code, verifier) = code_for(&app, PUBLIC_CLIENT, &[]).await;
    let tokens: Value = app
        .exchange(PUBLIC_CLIENT, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let wrong = "w".repeat(43);
    assert_eq!(
        error_of(app.exchange(PUBLIC_CLIENT, &code, &wrong).await).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status(), StatusCode::OK);
    assert_eq!(
        app.refresh(tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    let replays = app.audit_of(AuditKind::AuthorizationCodeReplayed).await;
    assert_eq!(replays.len(), 1);
    assert_eq!(replays[0].details["request_matched_code"], false);
    assert!(app.audit_of(AuditKind::SessionEnded).await.is_empty());
}

#[tokio::test]
async fn a_replayed_code_revokes_the_access_tokens_its_refresh_token_minted_since() {
    let app = spawn_app().await;
    let (code, verifier) = code_for(&app, PUBLIC_CLIENT, &[]).await;
    let tokens: Value = app
        .exchange(PUBLIC_CLIENT, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let refreshed: Value = app
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let replayed: Value = app
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        error_of(app.exchange(PUBLIC_CLIENT, &code, &verifier).await)
            .await
            .1,
        "invalid_grant"
    );
    for minted in [&tokens, &refreshed, &replayed] {
        let access = minted["access_token"].as_str().unwrap();
        assert_eq!(
            app.userinfo(access).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let replay = &app.audit_of(AuditKind::AuthorizationCodeReplayed).await[0];
    assert_eq!(replay.details["request_matched_code"], true);
    let ended = app.audit_of(AuditKind::SessionEnded).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].sid, replay.sid);
    assert_eq!(ended[0].details["reason"], "authorization_code_replay");
}

#[tokio::test]
async fn a_code_presented_by_another_client_first_is_still_its_holders_and_is_audited() {
    let app = spawn_app().await;
    let (code, verifier) = code_for(&app, PUBLIC_CLIENT, &[]).await;
    let stolen = app.exchange(CONFIDENTIAL_CLIENT, &code, &verifier).await;
    assert_eq!(error_of(stolen).await.1, "invalid_grant");
    let holder = app.exchange(PUBLIC_CLIENT, &code, &verifier).await;
    assert_eq!(holder.status(), StatusCode::OK, "the code was not spent");
    let seen = app.audit_of(AuditKind::GrantPresentedByOtherClient).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].details["grant"], "authorization_code");
    assert_eq!(seen[0].details["presented_by"], CONFIDENTIAL_CLIENT);
    assert_eq!(seen[0].client_id.as_deref(), Some(PUBLIC_CLIENT));
    assert!(seen[0].sid.is_some() && seen[0].user_id.is_some());
    assert!(
        app.audit_of(AuditKind::AuthorizationCodeReplayed)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn pkce_redirect_uri_expiry_and_client_binding_are_enforced() {
    let app = spawn_app().await;

    let (code, _) = code_for(&app, PUBLIC_CLIENT, &[]).await;
    let (other_verifier, _) = pkce();
    assert_eq!(
        error_of(app.exchange(PUBLIC_CLIENT, &code, &other_verifier).await)
            .await
            .1,
        "invalid_grant"
    );

    let (code, verifier) = code_for(&app, PUBLIC_CLIENT, &[]).await;
    let wrong_redirect = http()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9999/other"),
            ("code_verifier", verifier.as_str()),
            ("client_id", PUBLIC_CLIENT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(wrong_redirect).await.1, "invalid_grant");

    let (code, verifier) = code_for(&app, PUBLIC_CLIENT, &[]).await;
    app.clock.advance(61);
    assert_eq!(
        error_of(app.exchange(PUBLIC_CLIENT, &code, &verifier).await)
            .await
            .1,
        "invalid_grant"
    );

    let (code, verifier) = code_for(&app, PUBLIC_CLIENT, &[]).await;
    assert_eq!(
        error_of(app.exchange(CONFIDENTIAL_CLIENT, &code, &verifier).await)
            .await
            .1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn confidential_clients_authenticate_with_basic_or_post_but_not_both() {
    let app = spawn_app().await;
    let (code, verifier) = code_for(&app, CONFIDENTIAL_CLIENT, &[]).await;
    let post = http()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
            ("client_id", CONFIDENTIAL_CLIENT),
            ("client_secret", app.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);

    let (code, verifier) = code_for(&app, CONFIDENTIAL_CLIENT, &[]).await;
    let wrong_secret = http()
        .post(app.url("/token"))
        .basic_auth(CONFIDENTIAL_CLIENT, Some("wrong"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(wrong_secret.headers().contains_key("www-authenticate"));
    assert_eq!(
        error_of(wrong_secret).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );

    let both = http()
        .post(app.url("/token"))
        .basic_auth(CONFIDENTIAL_CLIENT, Some(&app.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_secret", app.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(both).await.1, "invalid_request");

    let no_secret = http()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", CONFIDENTIAL_CLIENT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(no_secret).await.1, "invalid_client");

    let public_with_secret = http()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", PUBLIC_CLIENT),
            ("client_secret", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(public_with_secret).await.1, "invalid_client");

    let garbage_basic = http()
        .post(app.url("/token"))
        .header("Authorization", "Basic !!!not-base64")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(garbage_basic).await.1, "invalid_client");
}

#[tokio::test]
async fn bad_requests_get_rfc_6749_errors_never_a_500() {
    let app = spawn_app().await;
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            http()
                .post(app.url("/token"))
                .form(&[("grant_type", "password"), ("client_id", PUBLIC_CLIENT)]),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            http()
                .post(app.url("/token"))
                .form(&[("client_id", PUBLIC_CLIENT)]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            http()
                .post(app.url("/token"))
                .header("content-type", "application/json")
                .body(r#"{"grant_type":"refresh_token"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            http()
                .post(app.url("/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=refresh_token&grant_type=authorization_code&client_id=spa"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            http()
                .post(app.url("/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=%ff%fe&client_id=spa"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            http()
                .post(app.url("/token"))
                .form(&[("grant_type", "refresh_token"), ("client_id", "nobody")]),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            http().post(app.url("/token")).form(&[
                ("grant_type", "authorization_code"),
                ("client_id", PUBLIC_CLIENT),
            ]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            http().post(app.url("/token")).form(&[
                ("grant_type", "authorization_code"),
                ("client_id", PUBLIC_CLIENT),
                ("code", "x"),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", "short"),
            ]),
            // A malformed verifier is refused before the code is looked at.
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            http()
                .post(app.url("/revoke"))
                .form(&[("client_id", PUBLIC_CLIENT)]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (request, status, error) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(error_of(response).await, (status, error.to_owned()));
    }

    let huge = http()
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&refresh_token={}",
            "a".repeat(200_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(huge).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request".into())
    );
    let get = http().get(app.url("/token")).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn tokens_carry_the_claims_of_rfc_9068_and_oidc_core() {
    let app = spawn_app().await;
    let (code, verifier) = code_for(
        &app,
        CONFIDENTIAL_CLIENT,
        &[
            ("resource", OTHER_API),
            ("scope", "openid profile todos:read"),
        ],
    )
    .await;
    let response = app.exchange(CONFIDENTIAL_CLIENT, &code, &verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.unwrap();
    assert!(
        tokens.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );

    let access_token = tokens["access_token"].as_str().unwrap();
    let at_header = header(access_token);
    assert_eq!(at_header["typ"], "at+jwt");
    assert_eq!(at_header["alg"], "ES256");
    let at = claims(access_token);
    assert_eq!(at["iss"], app.issuer);
    // The requested resource, and the userinfo endpoint since `openid` was granted.
    assert_eq!(
        at["aud"],
        serde_json::json!([OTHER_API, app.issuer.clone() + "/userinfo"])
    );
    assert_eq!(at["client_id"], CONFIDENTIAL_CLIENT);
    assert_eq!(at["scope"], "openid profile todos:read");
    assert_eq!(
        at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(),
        300
    );
    assert_eq!(at["iat"], T0);
    for claim in ["sub", "jti", "sid", "auth_time"] {
        assert!(at.get(claim).is_some(), "access token lacks {claim}");
    }

    let id_token = tokens["id_token"].as_str().unwrap();
    let id_header = header(id_token);
    assert_eq!(id_header["typ"], "JWT");
    assert_eq!(id_header["alg"], "RS256");
    let id = claims(id_token);
    assert_eq!(id["aud"], CONFIDENTIAL_CLIENT);
    assert_eq!(id["nonce"], "n-0S6");
    assert_eq!(id["sid"], at["sid"]);
    assert_eq!(id["sub"], at["sub"]);
    assert_eq!(id["preferred_username"], USERNAME);
    assert_eq!(id["auth_time"], T0);

    // Both are signed by keys in the JWKS.
    let jwks: Value = http()
        .get(app.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&at_header["kid"].as_str().unwrap()));
    assert!(kids.contains(&id_header["kid"].as_str().unwrap()));
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("d").is_none())
    );
}

#[tokio::test]
async fn userinfo_answers_for_valid_tokens_and_challenges_the_rest() {
    let app = spawn_app().await;
    let tokens = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid profile")
        .await;
    let info = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info.status(), StatusCode::OK);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["preferred_username"], USERNAME);

    let missing = http().get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    // Both schemes the endpoint accepts are offered (RFC 9449 §7.1), DPoP with its algs.
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"ostiary\", DPoP algs=\"ES256 EdDSA Ed25519 ES384 PS256 RS256\""
    );
    let garbage = app.userinfo("garbage").await;
    assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
    assert!(
        garbage.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // The ID token is not an access token.
    assert_eq!(
        app.userinfo(tokens["id_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // An expired access token is refused.
    app.clock.advance(301);
    assert_eq!(
        app.userinfo(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_revoked_access_token_is_refused_by_the_userinfo_endpoint() {
    let app = spawn_app().await;
    let tokens = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.revoke(access_token).await.status(), StatusCode::OK);
    assert_eq!(
        app.userinfo(access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_token_request_may_not_change_the_granted_resource() {
    let app = spawn_app().await;
    let (code, verifier) = code_for(&app, CONFIDENTIAL_CLIENT, &[]).await;
    let response = http()
        .post(app.url("/token"))
        .basic_auth(CONFIDENTIAL_CLIENT, Some(&app.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
            ("resource", OTHER_API),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_target".into())
    );
}

#[tokio::test]
async fn a_client_without_resources_gets_tokens_for_the_userinfo_endpoint_only() {
    use ostiary_core::client::{ClientId, ClientKind, RedirectUri};
    let app = spawn_app().await;
    app.idp
        .add_client(ostiary_core::idp::NewClient {
            id: ClientId::parse("oidc-only").unwrap(),
            kind: ClientKind::Public,
            redirect_uris: vec![RedirectUri::parse(REDIRECT_URI).unwrap()],
            post_logout_redirect_uris: vec![],
            resources: vec![],
            extra_scopes: vec![],
            web_origins: vec![],
            backchannel_logout_uri: None,
            policy: Default::default(),
        })
        .await
        .unwrap();
    let tokens = app.tokens_for(&browser(), "oidc-only", "openid").await;
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        claims(access_token)["aud"],
        app.issuer.clone() + "/userinfo"
    );
    assert_eq!(app.userinfo(access_token).await.status(), StatusCode::OK);
    // A token for an API, without openid, is not for the userinfo endpoint.
    let api_only = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "offline_access")
        .await;
    assert_eq!(
        claims(api_only["access_token"].as_str().unwrap())["aud"],
        API
    );
    assert_eq!(
        app.userinfo(api_only["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn another_client_replaying_a_spent_code_revokes_nothing() {
    let app = spawn_app().await;
    let (code, verifier) = code_for(&app, PUBLIC_CLIENT, &[]).await;
    let tokens: Value = app
        .exchange(PUBLIC_CLIENT, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let stolen = app.exchange(CONFIDENTIAL_CLIENT, &code, &verifier).await;
    assert_eq!(error_of(stolen).await.1, "invalid_grant");
    assert_eq!(
        app.refresh(tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.audit_of(AuditKind::GrantPresentedByOtherClient)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_refresh_token_presented_by_another_client_is_audited_and_harms_nobody() {
    let app = spawn_app().await;
    let tokens = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let foreign = http()
        .post(app.url("/token"))
        .basic_auth(CONFIDENTIAL_CLIENT, Some(&app.client_secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(foreign).await.1, "invalid_grant");
    let revoked_by_other = http()
        .post(app.url("/revoke"))
        .basic_auth(CONFIDENTIAL_CLIENT, Some(&app.client_secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked_by_other.status(), StatusCode::OK, "RFC 7009 §2.2");
    // The holder goes on.
    assert_eq!(app.refresh(token).await.status(), StatusCode::OK);
    let seen = app.audit_of(AuditKind::GrantPresentedByOtherClient).await;
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|e| e.details["grant"] == "refresh_token"
        && e.details["presented_by"] == CONFIDENTIAL_CLIENT
        && e.client_id.as_deref() == Some(PUBLIC_CLIENT)));
    assert!(
        app.audit_of(AuditKind::RefreshTokenReuseDetected)
            .await
            .is_empty()
    );
    assert!(app.audit_of(AuditKind::SessionEnded).await.is_empty());
}
