// The demo as a user sees it: sign in through the IdP's login page, call the API, keep working
// after the access token expired (silent renewal from the refresh cookie), reload, sign out. The
// tokens are DPoP-bound all along to the one key the page keeps in IndexedDB.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as h from './harness.mjs';

const ACCESS_TOKEN_TTL = 4;
const env = h.useDemo({ accessTokenTtl: ACCESS_TOKEN_TTL, apiLeeway: 0 });

test('full cycle: sign in, API, silent renewal after expiry, reload, sign out', { timeout: 120_000 }, async (t) => {
  const { demo } = env;
  const context = await h.newContext(t, env);
  const traffic = h.recordTraffic(context, demo);
  const page = await context.newPage();

  // Signed out -> "Sign in" -> the IdP's login page on auth.ostiary.localhost -> back, signed in.
  const signedIn = await h.signIn(page, demo, { shots: 'full-cycle' });
  assert.ok(
    traffic.navigations.some((u) => new URL(u).origin === demo.issuer && new URL(u).pathname === '/login'),
    'the login page was shown on the IdP origin',
  );
  assert.equal(new URL(page.url()).origin, demo.appUrl);
  assert.equal(new URL(page.url()).search, '', 'the authorization code left the address bar');
  assert.match(await page.textContent('#state-line'), /Signed in as demo\./);
  assert.ok(await page.isVisible('#call-api'));
  assert.ok(await page.isVisible('#sign-out'));
  assert.ok(!(await page.isVisible('#sign-in')));
  await h.shot(page, 'full-cycle-signed-in');
  const cookieAtSignIn = await h.refreshCookie(context);
  assert.ok(cookieAtSignIn, 'signing in set the refresh cookie');
  assert.match(signedIn.jkt ?? '', /^[A-Za-z0-9_-]{43}$/, "the access token is bound to the page's DPoP key (cnf.jkt)");

  // The API answers.
  const first = await h.callApiByButton(page);
  assert.equal(first.status, '200', first.text);
  assert.equal(first.json.client_id, h.CLIENT_ID);
  assert.equal(first.json.expires_at, signedIn.exp, 'the API saw the token the app holds');
  assert.equal(first.json.dpop_jkt, signedIn.jkt, 'the API checked the proof of that key');
  await h.shot(page, 'full-cycle-api-answer');
  await traffic.settled();
  const firstToken = traffic.tokens.at(-1);
  assert.equal(h.jwtClaims(firstToken).jti, signedIn.jti);

  // The access token expires; the API refuses it (checked from outside, with leeway 0).
  await page.waitForFunction((exp) => Date.now() / 1000 > exp, signedIn.exp, {
    polling: 100,
    timeout: (ACCESS_TOKEN_TTL + 10) * 1000,
  });
  const late = await h.proofFromPage(page, { htm: 'GET', htu: demo.apiHtu, accessToken: firstToken });
  const expired = await h.apiCall(demo, firstToken, late);
  assert.deepEqual([expired.status, expired.reason], [401, 'expired'], 'the API refuses the expired access token, proof or not');

  // Calling again works without signing in: a new access token from the refresh cookie.
  const navigationsBefore = traffic.navigations.length;
  const exchangesBefore = traffic.tokenExchanges.length;
  const second = await h.callApiByButton(page);
  assert.equal(second.status, '200', second.text);
  const renewed = await h.appState(page);
  assert.equal(renewed.signedIn, true);
  assert.equal(renewed.username, h.USERNAME);
  assert.notEqual(renewed.jti, signedIn.jti, 'a new access token (jti)');
  assert.ok(renewed.exp > signedIn.exp, 'the new access token lives longer');
  assert.equal(second.json.expires_at, renewed.exp, 'the API saw the new token');
  assert.deepEqual(traffic.navigations.slice(navigationsBefore), [], 'no page load, no login page during renewal');
  await traffic.settled();
  const renewal = traffic.tokenExchanges.slice(exchangesBefore);
  assert.deepEqual(renewal.map((e) => e.status), [200], 'exactly one refresh, which succeeded');
  const cookieAfterRenewal = await h.refreshCookie(context);
  assert.notEqual(cookieAfterRenewal.value, cookieAtSignIn.value, 'the refresh cookie rotated');
  // The page shows the new token (its status line updates once a second).
  await page.waitForFunction(
    (jti) => document.querySelector('#token-line').textContent.includes(`jti ${jti.slice(0, 8)}`),
    renewed.jti,
  );
  await h.shot(page, 'full-cycle-after-renewal');

  // A reload loses the in-memory token; the refresh cookie signs the page in again, silently.
  const reloadFrom = traffic.navigations.length;
  await page.reload();
  const reloaded = await h.waitReady(page);
  await h.expectStateLine(page, 'signed-in');
  assert.equal(reloaded.username, h.USERNAME);
  assert.notEqual(reloaded.jti, renewed.jti, 'a fresh access token after reload');
  assert.equal(reloaded.jkt, signedIn.jkt, 'bound to the same key: it outlives the reload in IndexedDB');
  assert.equal((await h.callApiByButton(page)).status, '200', 'the API takes it after the reload');
  assert.ok(
    traffic.navigations.slice(reloadFrom).every((u) => new URL(u).origin === demo.appUrl),
    `no visit to the IdP on reload: ${traffic.navigations.slice(reloadFrom)}`,
  );
  const lastCookie = await h.refreshCookie(context);

  // Sign out: signed out, cookies gone, and it stays so.
  await page.click('#sign-out');
  await h.expectStateLine(page, 'signed-out');
  assert.ok(await page.isVisible('#sign-in'));
  assert.ok(!(await page.isVisible('#call-api')));
  assert.deepEqual(await h.appState(page), { signedIn: false });
  await h.shot(page, 'full-cycle-after-sign-out');
  assert.equal(await h.refreshCookie(context), undefined, 'sign-out deleted the refresh cookie');
  assert.equal(await h.sessionCookie(context), undefined, 'sign-out deleted the IdP session cookie');

  await page.reload();
  assert.deepEqual(await h.waitReady(page), { signedIn: false });
  await h.expectStateLine(page, 'signed-out');
  assert.equal(await h.appRefresh(page), false, 'ostiaryDemo.refresh() resolves false after sign-out');
  assert.deepEqual(await h.appState(page), { signedIn: false });

  // The IdP ended the session, not only the cookies: the last refresh token is dead too, even
  // with a proof by its key.
  const proof = await h.proofFromPage(page, { htm: 'POST', htu: demo.tokenHtu });
  const replay = await h.replayRefreshCookie(demo, lastCookie.name, lastCookie.value, proof);
  assert.equal(replay.status, 400, JSON.stringify(replay.body));
  assert.equal(replay.body.error, 'invalid_grant');

  h.assertNoAppErrors(context);
});
