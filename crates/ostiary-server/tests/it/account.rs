//! The user's own sessions: listed, ended one by one or all others, with CSRF protection.

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;

async fn sessions(browser: &reqwest::Client, app: &TestApp) -> Vec<Value> {
    let answer: Value = browser
        .get(app.url("/account/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["sessions"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_user_sees_their_sessions_and_ends_all_others() {
    let app = spawn_app().await;
    let laptop = browser();
    let phone = browser();
    let laptop_tokens = app
        .tokens_for(&laptop, PUBLIC_CLIENT, "openid offline_access")
        .await;
    let phone_tokens = app
        .tokens_for(&phone, PUBLIC_CLIENT, "openid offline_access")
        .await;

    let listed = sessions(&laptop, &app).await;
    assert_eq!(listed.len(), 2);
    let current: Vec<&Value> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(
        current[0]["sid"],
        claims(laptop_tokens["access_token"].as_str().unwrap())["sid"]
    );
    assert!(
        listed
            .iter()
            .all(|s| s["clients"] == serde_json::json!([PUBLIC_CLIENT]))
    );

    let page = laptop
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("(this browser)"));
    assert!(
        page.contains("login succeeded"),
        "recent security events are shown"
    );
    let csrf = hidden_field(&page, "csrf_token");

    // Without the page's token nothing happens.
    let forged = laptop
        .post(app.url("/account/sessions/end"))
        .form(&[("which", "others")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(sessions(&laptop, &app).await.len(), 2);

    let ended = laptop
        .post(app.url("/account/sessions/end"))
        .form(&[("which", "others"), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);
    assert_eq!(sessions(&laptop, &app).await.len(), 1);
    assert_eq!(
        app.refresh(phone_tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.refresh(laptop_tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    // A signed-out browser is sent to the login page, and the JSON list answers 401.
    let anonymous = browser();
    assert_eq!(
        location(&anonymous.get(app.url("/account")).send().await.unwrap()),
        "/login?return_to=%2Faccount"
    );
    assert_eq!(
        anonymous
            .get(app.url("/account/sessions"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_user_cannot_end_another_users_session() {
    let app = spawn_app().await;
    app.idp
        .add_user(
            ostiary_core::user::Username::parse("bob").unwrap(),
            ostiary_core::secret::Password::new("bobs-passw0rd"),
        )
        .await
        .unwrap();
    let alice = browser();
    let alice_tokens = app
        .tokens_for(&alice, PUBLIC_CLIENT, "openid offline_access")
        .await;
    let alice_sid = claims(alice_tokens["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    // Bob signs in and tries to end Alice's session by its sid.
    let bob = browser();
    let html = bob
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&html, "csrf_token");
    bob.post(app.url("/login"))
        .form(&[
            ("username", "bob"),
            ("password", "bobs-passw0rd"),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let attempt = bob
        .post(app.url("/account/sessions/end"))
        .form(&[
            ("which", "one"),
            ("sid", alice_sid.as_str()),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(attempt.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.refresh(alice_tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_admin_api_needs_its_own_token_and_sees_and_ends_any_users_sessions() {
    let app = spawn_app().await;
    let tokens = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await;
    let admin = |path: &str| http().get(app.url(path)).bearer_auth(ADMIN_TOKEN);

    let none = http().get(app.url("/admin/sessions")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let wrong = http()
        .get(app.url("/admin/sessions"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // A user's access token is not an admin token.
    let user_token = http()
        .get(app.url("/admin/sessions"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(user_token.status(), StatusCode::UNAUTHORIZED);

    let listed: Value = admin(&format!("/admin/sessions?user={USERNAME}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);

    let revoked: Value = http()
        .post(app.url("/admin/sessions/revoke"))
        .bearer_auth(ADMIN_TOKEN)
        .form(&[("user", USERNAME)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["ended"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.refresh(tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );

    let audit: Value = admin(&format!("/admin/audit?user={USERNAME}&kind=session_ended"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["details"]["reason"], "admin_revoked");
    assert_eq!(events[0]["actor"], "admin");
    let bad = admin("/admin/audit?kind=nope").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
