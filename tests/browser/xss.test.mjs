// What script injected into the app's origin (XSS) can and cannot get: it can ask the IdP for
// access tokens while it runs, but it can never read, store or send away the refresh token,
// which lives in HttpOnly cookies on the IdP's own origin; and the access tokens it can copy are
// bound to a DPoP key it can use on the page but never take away, so they are useless elsewhere.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as h from './harness.mjs';

const env = h.useDemo();

const JWT_LIKE = /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\./;

/** Everything script on the page can read of cookies and web storage. */
function snoop(page) {
  return page.evaluate(() => {
    const dump = (storage) => {
      const out = [];
      for (let i = 0; i < storage.length; i++) {
        const key = storage.key(i);
        out.push([key, storage.getItem(key)]);
      }
      return out;
    };
    return { cookie: document.cookie, local: dump(localStorage), session: dump(sessionStorage) };
  });
}

/** Fails if `seen` (script-readable state) holds anything of the secrets or anything JWT-like. */
function assertNothingSecret(seen, secrets, when) {
  assert.equal(seen.cookie, '', `${when}: document.cookie on the app origin is empty`);
  const text = JSON.stringify([seen.local, seen.session]);
  assert.doesNotMatch(text, JWT_LIKE, `${when}: nothing JWT-like in localStorage/sessionStorage`);
  for (const [what, secret] of secrets) {
    assert.ok(!seen.cookie.includes(secret), `${when}: document.cookie holds the ${what}`);
    assert.ok(!text.includes(secret), `${when}: web storage holds the ${what}`);
  }
}

/** The IdP's cookies in the jar, as secrets script must never see (names and values). */
async function idpSecrets(context, traffic) {
  const secrets = [];
  for (const c of await context.cookies()) {
    secrets.push([`${c.name} cookie name`, c.name], [`${c.name} cookie value`, c.value]);
  }
  for (const token of traffic.tokens) secrets.push(['access token', token]);
  return secrets;
}

test('XSS on the app origin cannot read or take away the refresh token', { timeout: 60_000 }, async (t) => {
  const { demo } = env;
  const context = await h.newContext(t, env);
  const traffic = h.recordTraffic(context, demo);
  const page = await context.newPage();

  await h.openApp(page, demo);
  assertNothingSecret(await snoop(page), [], 'before sign-in');

  await h.signIn(page, demo);
  await traffic.settled();
  const refresh = await h.refreshCookie(context);
  const session = await h.sessionCookie(context);
  assert.ok(refresh && session, 'signed in: the IdP set its refresh and session cookies');
  assertNothingSecret(await snoop(page), await idpSecrets(context, traffic), 'after sign-in');

  assert.equal((await h.callApiByButton(page)).status, '200');
  await traffic.settled();
  assertNothingSecret(await snoop(page), await idpSecrets(context, traffic), 'after an API call');

  await page.reload();
  assert.equal((await h.waitReady(page)).signedIn, true);
  await traffic.settled();
  assertNothingSecret(await snoop(page), await idpSecrets(context, traffic), 'after reload');

  // The injected script calls the IdP itself, as the app does (fetch and XMLHttpRequest), with
  // proofs it signs with the app's key (which it can use while it runs here).
  const refreshValuesBefore = new Set([(await h.refreshCookie(context)).value]);
  const exchangesBefore = traffic.tokenExchanges.length;
  const proofs = [];
  for (let i = 0; i < 2; i++) proofs.push(await h.proofFromPage(page, { htm: 'POST', htu: demo.tokenHtu }));
  const loot = await page.evaluate(async ({ issuer, clientId, proofs }) => {
    const url = `${issuer}/browser/token?client_id=${clientId}`;
    const response = await fetch(url, {
      method: 'POST',
      credentials: 'include',
      headers: { 'X-Ostiary-CSRF': '1', DPoP: proofs[0] },
      body: new URLSearchParams({ grant_type: 'refresh_token' }),
    });
    const viaFetch = {
      status: response.status,
      headers: [...response.headers],
      setCookie: response.headers.get('set-cookie'),
      body: await response.text(),
    };
    const viaXhr = await new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', url);
      xhr.withCredentials = true;
      xhr.setRequestHeader('X-Ostiary-CSRF', '1');
      xhr.setRequestHeader('DPoP', proofs[1]);
      xhr.onloadend = () =>
        resolve({
          status: xhr.status,
          headers: xhr.getAllResponseHeaders(),
          setCookie: xhr.getResponseHeader('set-cookie'),
          body: xhr.responseText,
        });
      xhr.send(new URLSearchParams({ grant_type: 'refresh_token' }));
    });
    return { viaFetch, viaXhr, cookie: document.cookie };
  }, { issuer: demo.issuer, clientId: h.CLIENT_ID, proofs });
  await traffic.settled();

  // Every refresh-token value that existed: before, and whatever the IdP set in answer.
  const refreshValues = new Set(refreshValuesBefore);
  for (const e of traffic.tokenExchanges.slice(exchangesBefore)) {
    const value = h.cookieValueIn(e.setCookie, refresh.name);
    if (value) refreshValues.add(value);
  }
  refreshValues.add((await h.refreshCookie(context)).value);
  assert.ok(refreshValues.size >= 3, 'both injected calls rotated the refresh token (they reached the IdP)');

  for (const [how, got] of Object.entries({ fetch: loot.viaFetch, XMLHttpRequest: loot.viaXhr })) {
    assert.equal(got.status, 200, `${how}: the IdP answered the app's own origin`);
    const body = JSON.parse(got.body);
    assert.match(body.access_token, JWT_LIKE, `${how}: script may obtain an access token`);
    assert.equal(body.refresh_token, undefined, `${how}: the answer has no refresh_token`);
    assert.ok(!Object.keys(body).some((k) => /refresh/i.test(k)), `${how}: no refresh-ish field: ${Object.keys(body)}`);
    assert.equal(got.setCookie, null, `${how}: Set-Cookie is not readable`);
    const readable = JSON.stringify(got.headers) + got.body;
    assert.doesNotMatch(readable, /set-cookie/i, `${how}: no Set-Cookie among the readable headers`);
    for (const value of refreshValues) {
      assert.ok(!readable.includes(value), `${how}: a refresh-token value is readable by script`);
    }
    assert.ok(!readable.includes(session.value), `${how}: the session cookie is readable by script`);
  }
  assert.equal(loot.cookie, '', 'document.cookie is still empty');

  // The rotations the injected script caused did not break the app: it refreshes as before.
  assert.equal(await h.appRefresh(page), true);
  assert.equal((await h.callApiByButton(page)).status, '200');
  h.assertNoAppErrors(context);
});

test('XSS that copies the access token and its proof gets nothing from the API off the page', { timeout: 60_000 }, async (t) => {
  const { demo } = env;
  const context = await h.newContext(t, env);
  const page = await context.newPage();
  const signedIn = await h.signIn(page, demo);

  // The injected script hooks fetch to copy what the app sends to the API, tries to export the
  // app's private key, and signs a proof dated an hour ahead, to be used later from elsewhere.
  await page.evaluate((apiUrl) => {
    const original = window.fetch;
    window.stolen = [];
    window.fetch = (url, init = {}) => {
      if (String(url).startsWith(apiUrl)) window.stolen.push({ ...init.headers });
      return original(url, init);
    };
  }, demo.apiUrl);
  assert.equal((await h.callApiByButton(page)).status, '200');
  const copied = await page.evaluate(() => window.stolen.at(-1));
  assert.ok(copied?.Authorization?.startsWith('DPoP ') && copied.DPoP, `the script copied both headers: ${JSON.stringify(copied)}`);
  const accessToken = copied.Authorization.slice('DPoP '.length);
  assert.equal(h.jwtClaims(accessToken).cnf?.jkt, signedIn.jkt);

  const keyLoot = await h.exportAppKey(page);
  assert.deepEqual(keyLoot, { extractable: false, exported: ['InvalidAccessError', 'InvalidAccessError'] }, 'the private key cannot leave WebCrypto');
  const stockpiled = await h.proofFromPage(page, {
    htm: 'GET', htu: demo.apiHtu, accessToken, iat: Math.floor(Date.now() / 1000) + 3600,
  });

  // From outside the page (a plain HTTP client), every way of presenting the copy is refused.
  const thief = h.thiefKey();
  const attempts = {
    'the copied proof, replayed': await h.apiCall(demo, accessToken, copied.DPoP),
    'as a bearer token': await h.apiCall(demo, accessToken),
    'as DPoP without a proof': await h.apiCall(demo, accessToken, ''),
    "with the thief's own key": await h.apiCall(demo, accessToken, thief.proof({ htm: 'GET', htu: demo.apiHtu, accessToken })),
    'with a proof signed for later': await h.apiCall(demo, accessToken, stockpiled),
  };
  for (const [how, answer] of Object.entries(attempts)) {
    assert.equal(answer.status, 401, `${how}: ${JSON.stringify(answer)}`);
    assert.match(answer.challenges, /DPoP/, `${how}: a DPoP challenge`);
  }
  assert.equal(attempts['the copied proof, replayed'].reason, 'invalid_dpop_proof');
  assert.equal(attempts["with the thief's own key"].reason, 'dpop_key_mismatch');
  assert.equal(attempts['with a proof signed for later'].reason, 'invalid_dpop_proof');

  // The page itself goes on.
  assert.equal((await h.callApiByButton(page)).status, '200');
  h.assertNoAppErrors(context);
});

test('IdP cookies: HttpOnly, Secure (kept over plain http on *.localhost), SameSite, host-only', { timeout: 60_000 }, async (t) => {
  const { demo } = env;
  const context = await h.newContext(t, env);
  const page = await context.newPage();
  await h.signIn(page, demo);

  // The demo runs on plain http: Chromium keeps Secure cookies there only because *.localhost
  // is a potentially trustworthy origin. The whole demo relies on that.
  assert.equal(new URL(demo.issuer).protocol, 'http:');
  assert.equal(new URL(page.url()).protocol, 'http:');
  assert.equal(await page.evaluate(() => window.isSecureContext), true, 'http://app.ostiary.localhost is a secure context');

  const cookies = await context.cookies();
  const describe = cookies.map((c) => `${c.name}@${c.domain}`).join(', ');
  assert.ok(cookies.length > 0, 'the IdP set cookies over plain http');
  for (const c of cookies) {
    // Host-only: Playwright shows a Domain cookie with a leading dot.
    assert.equal(c.domain, h.IDP_HOST, `only host-only cookies of the IdP exist: ${describe}`);
    assert.ok(c.name.startsWith('__Host-'), `${c.name}: __Host- prefix`);
    assert.equal(c.path, '/', `${c.name}: Path=/`);
    assert.equal(c.httpOnly, true, `${c.name}: HttpOnly`);
    assert.equal(c.secure, true, `${c.name}: Secure`);
  }
  const refresh = await h.refreshCookie(context);
  assert.ok(refresh, `a refresh cookie exists: ${describe}`);
  assert.equal(refresh.sameSite, 'Strict', 'refresh cookie: SameSite=Strict');
  assert.ok(refresh.expires > Date.now() / 1000 + 3600, 'refresh cookie: persistent (Max-Age)');
  const session = await h.sessionCookie(context);
  assert.ok(session, `a session cookie exists: ${describe}`);
  assert.equal(session.sameSite, 'Lax', 'session cookie: SameSite=Lax');

  // None of them is sent to the app's or the API's origin.
  assert.deepEqual(await context.cookies([demo.appUrl, demo.apiUrl, `http://ostiary.localhost:${demo.idpPort}`]), []);
  h.assertNoAppErrors(context);
});
