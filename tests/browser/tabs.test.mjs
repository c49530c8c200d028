// Two tabs of the app share one refresh cookie and one DPoP key: refreshing in both at once must
// not look like theft, and signing out in one ends the other's ability to get tokens.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as h from './harness.mjs';

const env = h.useDemo();

/** Two signed-in tabs of the app in one context. */
async function twoTabs(t) {
  const { demo } = env;
  const context = await h.newContext(t, env);
  const traffic = h.recordTraffic(context, demo);
  const one = await context.newPage();
  await h.signIn(one, demo);
  const two = await context.newPage();
  assert.equal((await h.openApp(two, demo)).signedIn, true, 'the second tab is signed in by the refresh cookie');
  await h.expectStateLine(two, 'signed-in');
  await traffic.settled();
  return { context, traffic, one, two };
}

/**
 * Refreshes in both tabs at the same moment (two page.evaluate at once) and checks that both
 * got a working access token. Returns the two /browser/token exchanges.
 */
async function refreshBoth({ context, traffic, one, two }, options, label) {
  const { demo } = env;
  const from = traffic.tokenExchanges.length;
  const results = await Promise.all([h.appRefresh(one, options), h.appRefresh(two, options)]);
  assert.deepEqual(results, [true, true], `${label}: both refreshes resolve true`);
  await traffic.settled();
  const exchanges = traffic.tokenExchanges.slice(from);
  assert.deepEqual(exchanges.map((e) => e.status), [200, 200], `${label}: two successful token requests`);

  const tokens = exchanges.map((e) => e.body.access_token);
  const jtis = tokens.map((token) => h.jwtClaims(token).jti);
  for (const [name, page] of [['tab one', one], ['tab two', two]]) {
    const state = await h.appState(page);
    assert.equal(state.signedIn, true, `${label}, ${name}: signed in`);
    assert.equal(state.username, h.USERNAME);
    assert.ok(jtis.includes(state.jti), `${label}, ${name}: holds one of the new tokens`);
    assert.ok(state.exp > Date.now() / 1000, `${label}, ${name}: its token has not expired`);
    await h.expectStateLine(page, 'signed-in');
  }
  const jkts = await Promise.all([one, two].map(async (page) => (await h.appState(page)).jkt));
  assert.ok(jkts[0] && jkts[0] === jkts[1], `${label}: both tabs' tokens are bound to one DPoP key: ${jkts}`);
  for (const token of tokens) {
    assert.equal(h.jwtClaims(token).cnf?.jkt, jkts[0], `${label}: each new token is bound to that key`);
    const proof = await h.proofFromPage(one, { htm: 'GET', htu: demo.apiHtu, accessToken: token });
    assert.equal(await h.apiStatus(demo, token, proof), 200, `${label}: the API accepts each new token`);
  }
  const jar = (await h.refreshCookie(context))?.value;
  assert.ok(jar, `${label}: a refresh cookie is left`);
  return { exchanges, jar };
}

test('two tabs refreshing at the same moment both stay signed in (unserialized, then serialized)', { timeout: 90_000 }, async (t) => {
  const tabs = await twoTabs(t);
  const { context, one, two } = tabs;
  const name = (await h.refreshCookie(context)).name;
  await h.shot(two, 'tabs-second-tab-signed-in');

  // Without the Web Lock: both requests may present the same cookie; the IdP's grace window
  // must answer both with the same successor instead of calling it reuse. Whether the two
  // requests really overlap is up to the browser: try a few rounds until one does.
  let raced;
  let overlapped = false;
  for (let round = 1; round <= 5 && !overlapped; round++) {
    const before = (await h.refreshCookie(context)).value;
    raced = await refreshBoth(tabs, { serialize: false }, `unserialized round ${round}`);
    const presented = raced.exchanges.map((e) => h.cookieValueIn(e.requestCookie, name));
    const successors = raced.exchanges.map((e) => h.cookieValueIn(e.setCookie, name));
    assert.ok(presented.includes(before), 'a request presented the current cookie');
    assert.ok(successors.includes(raced.jar), 'the jar holds a successor');
    assert.ok(!presented.includes(raced.jar), 'the cookie rotated');
    overlapped = presented[0] === presented[1];
    if (overlapped) {
      assert.equal(successors[0], successors[1], 'both presenters of one token get one and the same successor');
    } else {
      // One after the other: the later request presented the earlier one's successor.
      assert.ok(presented.some((p) => successors.includes(p)), JSON.stringify({ presented, successors }));
    }
    t.diagnostic(`unserialized round ${round}: both requests presented the same refresh token: ${overlapped}`);
  }
  assert.ok(overlapped, 'in some round, both tabs presented the same refresh token at once');

  // With the Web Lock (the default): strictly one after the other.
  const serialized = await refreshBoth(tabs, undefined, 'serialized');
  const presented2 = serialized.exchanges.map((e) => h.cookieValueIn(e.requestCookie, name));
  const successors2 = serialized.exchanges.map((e) => h.cookieValueIn(e.setCookie, name));
  assert.equal(presented2[0], raced.jar, 'serialized: the first request presented the current cookie');
  assert.equal(presented2[1], successors2[0], "serialized: the second presented the first one's successor");
  assert.notEqual(successors2[1], successors2[0]);
  assert.equal(serialized.jar, successors2[1]);

  // The session is still alive (nothing was taken for theft): each tab refreshes once more.
  assert.equal(await h.appRefresh(one), true);
  assert.equal(await h.appRefresh(two), true);
  assert.equal((await h.callApiByButton(one)).status, '200');
  assert.equal((await h.callApiByButton(two)).status, '200');
  h.assertNoAppErrors(context);
});

test('after sign-out in one tab, no tab of that browser gets access tokens', { timeout: 60_000 }, async (t) => {
  const { demo } = env;
  const { context, traffic, one, two } = await twoTabs(t);
  const last = await h.refreshCookie(context);

  await one.click('#sign-out');
  await h.expectStateLine(one, 'signed-out');
  assert.equal(await h.refreshCookie(context), undefined);

  // The second tab still shows what it had; its next attempt to get a token fails.
  const from = traffic.tokenExchanges.length;
  assert.equal(await h.appRefresh(two), false, 'tab two: refresh() resolves false');
  await h.expectStateLine(two, 'signed-out');
  assert.deepEqual(await h.appState(two), { signedIn: false });
  await two.evaluate(() => window.ostiaryDemo.callApi());
  assert.deepEqual(await h.appState(two), { signedIn: false }, 'calling the API does not sign tab two in again');
  await traffic.settled();
  const attempts = traffic.tokenExchanges.slice(from);
  assert.ok(attempts.length >= 1);
  for (const a of attempts) {
    assert.equal(a.status, 400, JSON.stringify(a.body));
    assert.equal(a.body?.access_token, undefined);
  }
  await h.shot(two, 'tabs-second-tab-after-sign-out');

  for (const page of [one, two]) {
    await page.reload();
    assert.deepEqual(await h.waitReady(page), { signedIn: false });
    await h.expectStateLine(page, 'signed-out');
    assert.equal(await h.appRefresh(page), false);
  }
  // Server side, too: the last refresh token no longer works, even presented directly with a
  // proof by its key.
  const proof = await h.proofFromPage(one, { htm: 'POST', htu: demo.tokenHtu });
  const replay = await h.replayRefreshCookie(demo, last.name, last.value, proof);
  assert.equal(replay.status, 400);
  assert.equal(replay.body.error, 'invalid_grant');
  // Signing in again needs the password (the IdP session ended), and works.
  assert.equal((await h.signIn(two, demo)).signedIn, true);
  assert.equal((await h.callApiByButton(two)).status, '200');
  assert.equal(await h.appRefresh(one), true, 'the other tab shares the new sign-in');
  h.assertNoAppErrors(context);
});
