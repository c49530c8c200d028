// Ostiary demo single-page app: plain JavaScript, no build step.
//
// What it keeps: the access token, in the `session` variable below, and nowhere else. The refresh
// token is an HttpOnly cookie on the identity provider's origin, which this script can neither
// read nor send anywhere but to the IdP's browser endpoints (fetch with credentials: 'include').
// Both are bound to a DPoP key (RFC 9449): an ECDSA P-256 key pair made by WebCrypto as
// non-extractable, kept in IndexedDB (so every tab and every reload uses the same one), whose
// private half no script can read. Each request to the IdP and the API carries a proof signed
// with it; a copy of either token, taken anywhere, is useless without the key.
'use strict';

let config = null;          // { issuer, clientId, redirectUri, apiUrl }, from /config.json
let session = null;         // { accessToken, scheme, expiresAt (ms), claims, username } while signed in
let dpopKey = null;         // { privateKey (non-extractable CryptoKey), jwk (public) }, once loaded
const dpopNonces = new Map(); // origin -> the last DPoP-Nonce it sent (RFC 9449 §8, §9)

const $ = (id) => document.getElementById(id);

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

function base64urlJson(value) {
  return base64url(new TextEncoder().encode(JSON.stringify(value)));
}

// The DPoP key, from IndexedDB; made there the first time. Two tabs making one at once: add()
// lets only the first store it, and the other uses that one.
const KEY_DB = 'ostiary-demo';
const KEY_STORE = 'keys';
const KEY_NAME = 'dpop';

function idbResult(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function loadDpopKey() {
  if (dpopKey) return dpopKey;
  const open = indexedDB.open(KEY_DB, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(KEY_STORE);
  const db = await idbResult(open);
  const stored = () => idbResult(db.transaction(KEY_STORE).objectStore(KEY_STORE).get(KEY_NAME));
  let pair = await stored();
  if (!pair) {
    const made = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    const add = db.transaction(KEY_STORE, 'readwrite').objectStore(KEY_STORE).add(made, KEY_NAME);
    pair = await idbResult(add).then(() => made, () => stored());
  }
  db.close();
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey);
  dpopKey = { privateKey: pair.privateKey, jwk: { kty, crv, x, y } };
  return dpopKey;
}

// A DPoP proof (RFC 9449 §4.2) for one request: `htu` without query, `ath` for a token.
async function dpopProof(method, url, accessToken) {
  const key = await loadDpopKey();
  const target = new URL(url);
  const claims = {
    jti: randomString(),
    htm: method,
    htu: `${target.origin}${target.pathname}`,
    iat: Math.floor(Date.now() / 1000),
  };
  if (accessToken) {
    claims.ath = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(accessToken)));
  }
  const nonce = dpopNonces.get(target.origin);
  if (nonce) claims.nonce = nonce;
  const input = `${base64urlJson({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk })}.${base64urlJson(claims)}`;
  const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key.privateKey, new TextEncoder().encode(input));
  return `${input}.${base64url(signature)}`;
}

// fetch with a fresh proof; a server that asks for a nonce of its own (use_dpop_nonce, with
// the nonce in DPoP-Nonce) gets one more try with it.
async function fetchWithProof(url, init, accessToken) {
  const origin = new URL(url).origin;
  for (let attempt = 1; ; attempt++) {
    const proof = await dpopProof(init.method || 'GET', url, accessToken);
    const response = await fetch(url, { ...init, headers: { ...init.headers, DPoP: proof } });
    const nonce = response.headers.get('DPoP-Nonce');
    const newNonce = nonce && nonce !== dpopNonces.get(origin);
    if (nonce) dpopNonces.set(origin, nonce);
    if (attempt > 1 || !newNonce || response.ok) return response;
    const challenge = response.headers.get('WWW-Authenticate') || '';
    const error = response.status === 400 ? (await response.clone().json().catch(() => ({}))).error : '';
    if (!challenge.includes('use_dpop_nonce') && error !== 'use_dpop_nonce') return response;
  }
}

// An access token's request headers, for a resource (the API, userinfo).
function authorized(method, url) {
  const { accessToken, scheme } = session;
  const headers = { Authorization: `${scheme} ${accessToken}` };
  return scheme === 'DPoP' ? fetchWithProof(url, { method, headers }, accessToken) : fetch(url, { method, headers });
}

function decodeClaims(jwt) {
  const payload = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  return JSON.parse(atob(payload));
}

// A call to one of the IdP's browser endpoints. The custom header makes it a CORS request that
// the browser must pre-approve with the IdP, which only approves this app's registered origin.
// Token requests carry a DPoP proof: the IdP binds the tokens, and the refresh cookie, to the key.
function idp(path, form, { proof = true } = {}) {
  const url = `${config.issuer}${path}?client_id=${encodeURIComponent(config.clientId)}`;
  const init = {
    method: 'POST',
    credentials: 'include',
    headers: { 'X-Ostiary-CSRF': '1' },
    body: new URLSearchParams(form),
  };
  return proof ? fetchWithProof(url, init) : fetch(url, init);
}

// Signing in: authorization code flow with PKCE. The verifier and state must survive the trip to
// the IdP's login page and back, so they wait in sessionStorage (this tab only) and are deleted on
// return; they are not tokens and are useless once the code is redeemed.
async function signIn() {
  const verifier = randomString();
  const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const state = randomString();
  sessionStorage.setItem('ostiary-demo.pending', JSON.stringify({ verifier, state }));
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: config.clientId,
    redirect_uri: config.redirectUri,
    scope: 'openid profile offline_access',
    state,
    nonce: randomString(),
    code_challenge: challenge,
    code_challenge_method: 'S256',
    resource: config.apiUrl,
  });
  location.assign(`${config.issuer}/authorize?${query}`);
}

async function completeSignIn(query) {
  history.replaceState(null, '', location.pathname); // the code leaves the address bar at once
  const pending = JSON.parse(sessionStorage.getItem('ostiary-demo.pending') || 'null');
  sessionStorage.removeItem('ostiary-demo.pending');
  if (query.get('error')) {
    return show('error', `Sign-in failed: ${query.get('error')} ${query.get('error_description') || ''}`);
  }
  if (!pending || pending.state !== query.get('state') || query.get('iss') !== config.issuer) {
    return show('error', 'This sign-in response was not started here (state or issuer mismatch).');
  }
  await accept(await idp('/browser/token', {
    grant_type: 'authorization_code',
    code: query.get('code'),
    redirect_uri: config.redirectUri,
    code_verifier: pending.verifier,
  }));
}

// Takes a token response: keeps the access token in memory, or forgets everything.
async function accept(response) {
  if (!response.ok) {
    session = null;
    render();
    return false;
  }
  const body = await response.json();
  const claims = decodeClaims(body.access_token);
  const scheme = body.token_type?.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
  session = { accessToken: body.access_token, scheme, expiresAt: claims.exp * 1000, claims, username: session?.username };
  if (!session.username) {
    const info = await authorized('GET', `${config.issuer}/userinfo`);
    session.username = info.ok ? (await info.json()).preferred_username : claims.sub;
  }
  render();
  return true;
}

// A new access token from the refresh cookie. Tabs of this app share the cookie, so they take
// turns (Web Locks API): one rotation at a time. The IdP's grace window also answers two
// rotations of the same cookie at once with the same successor, so nothing breaks without it.
function refresh({ serialize = true } = {}) {
  const run = async () => accept(await idp('/browser/token', { grant_type: 'refresh_token' }));
  return serialize && navigator.locks ? navigator.locks.request('ostiary-demo-refresh', run) : run();
}

async function freshAccessToken() {
  if (session && Date.now() < session.expiresAt - 2000) return session.accessToken;
  return (await refresh()) ? session.accessToken : null;
}

async function callApi() {
  if (!(await freshAccessToken())) return;
  const url = `${config.apiUrl}/api/hello`;
  let response = await authorized('GET', url);
  if (response.status === 401 && (await refresh())) {
    response = await authorized('GET', url);
  }
  $('api-card').hidden = false;
  $('api-output').textContent = `HTTP ${response.status}\n\n${await response.text()}`;
  $('api-output').dataset.status = String(response.status);
}

async function signOut() {
  await idp('/browser/logout', {}, { proof: false });
  session = null;
  $('api-card').hidden = true;
  render();
  show('signed-out', 'You signed out. Your session at the identity provider has ended.');
}

function show(kind, text) {
  $('state-line').dataset.state = kind;
  $('state-line').textContent = text;
}

function render() {
  const signedIn = session !== null;
  $('sign-in').hidden = signedIn;
  $('call-api').hidden = !signedIn;
  $('refresh').hidden = !signedIn;
  $('sign-out').hidden = !signedIn;
  if (signedIn) {
    show('signed-in', `Signed in as ${session.username}.`);
  } else {
    show('signed-out', 'You are not signed in.');
    $('token-line').textContent = '';
  }
}

function tick() {
  if (!session) return;
  const seconds = Math.round((session.expiresAt - Date.now()) / 1000);
  $('token-line').textContent = seconds > 0
    ? `Access token (jti ${session.claims.jti.slice(0, 8)}…) expires in ${seconds} s; a new one is fetched when needed.`
    : `The access token has expired; the next API call gets a new one without signing in again.`;
}

// For the automated browser tests: what the page knows, without exposing more than the page has.
window.ostiaryDemo = {
  refresh,
  callApi,
  signOut,
  state: () => (session
    ? { signedIn: true, username: session.username, jti: session.claims.jti, exp: session.claims.exp, jkt: session.claims.cnf?.jkt }
    : { signedIn: false }),
};

async function main() {
  config = await (await fetch('/config.json')).json();
  $('app-origin').textContent = location.origin;
  $('where-app').textContent = location.origin;
  $('where-idp').textContent = config.issuer;
  $('where-api').textContent = config.apiUrl;
  $('sign-in').addEventListener('click', signIn);
  $('call-api').addEventListener('click', callApi);
  $('refresh').addEventListener('click', () => {
    $('api-card').hidden = true; // that answer was for the previous token
    refresh();
  });
  $('sign-out').addEventListener('click', signOut);
  setInterval(tick, 1000);

  const query = new URLSearchParams(location.search);
  if (query.has('code') || query.has('error')) {
    await completeSignIn(query);
  } else {
    await refresh(); // still signed in from an earlier visit? The IdP's cookie says.
  }
  tick();
  document.body.dataset.ready = 'true';
}

main().catch((e) => show('error', `Something went wrong: ${e.message}`));
