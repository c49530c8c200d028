//! Signing in as a browser would, for the examples: the authorization endpoint, the login
//! form, back to the authorization endpoint, then the code exchange with PKCE.

use base64::Engine as _;
use ostiary_core::secret::Credential;

/// Who signs in, to which public client.
pub struct SignIn<'a> {
    /// The IdP's base URL (`http://127.0.0.1:PORT`).
    pub base: &'a str,
    /// A public client registered with `redirect_uri`.
    pub client_id: &'a str,
    /// Its redirect URI.
    pub redirect_uri: &'a str,
    /// Requested scope.
    pub scope: &'a str,
    /// The user.
    pub username: &'a str,
    /// Their password.
    pub password: &'a str,
}

fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).map(|i| i + marker.len()).unwrap_or(0);
    let end = start + html[start..].find('"').unwrap_or(0);
    html[start..end]
        .replace("&amp;", "&")
        .replace("&#x2F;", "/")
}

fn location(response: &reqwest::Response) -> anyhow::Result<String> {
    Ok(response
        .headers()
        .get("location")
        .ok_or_else(|| anyhow::anyhow!("expected a redirect, got {}", response.status()))?
        .to_str()?
        .to_owned())
}

/// Signs in with a fresh cookie jar and returns the token response.
pub async fn sign_in(who: &SignIn<'_>) -> anyhow::Result<serde_json::Value> {
    let SignIn {
        base,
        client_id,
        redirect_uri,
        scope,
        username,
        password,
    } = who;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let verifier = Credential::generate().expose().to_owned();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    let mut authorize = reqwest::Url::parse(&format!("{base}/authorize"))?;
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scope)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let login = browser.get(authorize).send().await?;
    let login_page = format!("{base}{}", location(&login)?);
    let html = browser.get(&login_page).send().await?.text().await?;
    let back = browser
        .post(format!("{base}/login"))
        .form(&[
            ("username", *username),
            ("password", *password),
            ("csrf_token", &field(&html, "csrf_token")),
            ("return_to", &field(&html, "return_to")),
        ])
        .send()
        .await?;
    let again = browser
        .get(format!("{base}{}", location(&back)?))
        .send()
        .await?;
    let redirect = reqwest::Url::parse(&location(&again)?)?;
    let code = redirect
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| anyhow::anyhow!("no code in {redirect}"))?;
    let response = reqwest::Client::new()
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", &verifier),
            ("client_id", client_id),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 200,
        "code exchange: {}",
        response.status()
    );
    Ok(response.json().await?)
}
