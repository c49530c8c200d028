// A copy of the refresh cookie, stolen (e.g. from the disk) and used from elsewhere. The cookie
// is bound to the page's DPoP key, which never leaves the browser: the copy alone gets nothing
// and changes nothing. Only with a proof by that key (script running on the page) could it be
// presented, and then the IdP's reuse detection is the second line: an old generation coming
// back ends the whole session.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as h from './harness.mjs';

const env = h.useDemo();

test("a stolen refresh cookie without the page's key gets nothing and the owner stays signed in", { timeout: 60_000 }, async (t) => {
  const { demo } = env;
  const context = await h.newContext(t, env);
  const page = await context.newPage();
  const signedIn = await h.signIn(page, demo);
  const stolen = await h.refreshCookie(context);

  // The current generation, replayed from Node without a proof, and with the thief's own key.
  const thief = h.thiefKey();
  const attempts = {
    'without a proof': await h.replayRefreshCookie(demo, stolen.name, stolen.value),
    "with the thief's key": await h.replayRefreshCookie(demo, stolen.name, stolen.value, thief.proof({ htm: 'POST', htu: demo.tokenHtu })),
  };
  for (const [how, replay] of Object.entries(attempts)) {
    assert.equal(replay.status, 400, `${how}: ${JSON.stringify(replay.body)}`);
    assert.match(replay.body.error, /^(invalid_dpop_proof|invalid_grant)$/, how);
    assert.equal(replay.body.access_token, undefined, `${how}: no access token`);
    assert.deepEqual(replay.setCookies, [], `${how}: no new cookie, and the owner's is not deleted`);
  }
  assert.equal(attempts['without a proof'].body.error, 'invalid_dpop_proof', 'the demo client requires DPoP');
  assert.equal(attempts["with the thief's key"].body.error, 'invalid_grant', 'bound to another key');

  // Nothing changed for the owner: the very cookie that was copied still rotates.
  assert.equal((await h.refreshCookie(context)).value, stolen.value);
  assert.equal(await h.appRefresh(page), true, "the owner's refresh works");
  assert.equal(await h.appRefresh(page), true);
  assert.notEqual((await h.refreshCookie(context)).value, stolen.value, 'it rotated');

  // Now two generations old, the copy would be reuse, and end the session, if it counted: without
  // the key it does not.
  for (const proof of [undefined, thief.proof({ htm: 'POST', htu: demo.tokenHtu })]) {
    const late = await h.replayRefreshCookie(demo, stolen.name, stolen.value, proof);
    assert.equal(late.status, 400, JSON.stringify(late.body));
    assert.deepEqual(late.setCookies, []);
  }
  assert.equal(await h.appRefresh(page), true, 'the owner is still signed in');
  assert.equal((await h.appState(page)).jkt, signedIn.jkt);
  assert.equal((await h.callApiByButton(page)).status, '200');
  h.assertNoAppErrors(context);
});

test('with a proof by the key, a copy two generations old ends the session in every tab', { timeout: 60_000 }, async (t) => {
  const { demo } = env;
  const context = await h.newContext(t, env);
  const traffic = h.recordTraffic(context, demo);
  const one = await context.newPage();
  await h.signIn(one, demo);
  const two = await context.newPage();
  assert.equal((await h.openApp(two, demo)).signedIn, true);

  // The thief's copy.
  const stolen = await h.refreshCookie(context);

  // The legitimate tab refreshes twice: the copy is now two generations old.
  assert.equal(await h.appRefresh(one), true);
  assert.equal(await h.appRefresh(one), true);
  await traffic.settled();
  const current = await h.refreshCookie(context);
  const generations = traffic.tokenExchanges.slice(-2).map((e) => h.cookieValueIn(e.setCookie, stolen.name));
  assert.equal(generations.length, 2);
  assert.ok(!generations.includes(stolen.value) && generations[0] !== generations[1], 'two rotations happened');
  assert.equal(current.value, generations[1]);

  // Script on the page signs a proof with the app's key; the thief replays the old copy with it,
  // forging the app's Origin and the CSRF header: refused, and the IdP ends the session.
  const proof = () => h.proofFromPage(one, { htm: 'POST', htu: demo.tokenHtu });
  const replay = await h.replayRefreshCookie(demo, stolen.name, stolen.value, await proof());
  assert.equal(replay.status, 400, JSON.stringify(replay.body));
  assert.equal(replay.body.error, 'invalid_grant');
  assert.equal(replay.body.access_token, undefined);
  assert.ok(
    replay.setCookies.some((c) => c.startsWith(`${stolen.name}=;`) && /Max-Age=0/i.test(c)),
    `the answer deletes the cookie: ${replay.setCookies}`,
  );

  // The victim's current cookie is dead as well, in both tabs.
  for (const [name, page] of [['tab one', one], ['tab two', two]]) {
    assert.equal(await h.appRefresh(page), false, `${name}: refresh() resolves false`);
    await h.expectStateLine(page, 'signed-out');
    assert.deepEqual(await h.appState(page), { signedIn: false });
  }
  assert.equal(await h.refreshCookie(context), undefined, "the IdP deleted the victim's dead refresh cookie");
  const again = await h.replayRefreshCookie(demo, current.name, current.value, await proof());
  assert.equal(again.status, 400, 'the generation the victim held is dead too');
  assert.equal(again.body.error, 'invalid_grant');

  for (const page of [one, two]) {
    await page.reload();
    assert.deepEqual(await h.waitReady(page), { signedIn: false });
    await h.expectStateLine(page, 'signed-out');
  }
  await h.shot(one, 'stolen-cookie-victim-signed-out');

  // The IdP session ended too: signing in again needs the password.
  await one.click('#sign-in');
  await one.waitForURL((u) => u.origin === demo.issuer && u.pathname === '/login');
  await one.waitForSelector('#username');
  h.assertNoAppErrors(context);
});

test('a copy one generation old, replayed with a proof within the grace window, gets the same successor', { timeout: 60_000 }, async (t) => {
  const { demo } = env;
  const context = await h.newContext(t, env);
  const page = await context.newPage();
  await h.signIn(page, demo);
  const previous = await h.refreshCookie(context);
  assert.equal(await h.appRefresh(page), true);
  const current = await h.refreshCookie(context);
  assert.notEqual(current.value, previous.value);

  // (Within the 10 s grace window: this is what a lost answer's retry looks like.)
  const proof = await h.proofFromPage(page, { htm: 'POST', htu: demo.tokenHtu });
  const replay = await h.replayRefreshCookie(demo, previous.name, previous.value, proof);
  assert.equal(replay.status, 200, JSON.stringify(replay.body));
  assert.equal(replay.body.refresh_token, undefined, 'a browser client never gets the refresh token in a body');
  assert.equal(replay.body.token_type, 'DPoP');
  const successor = replay.setCookies.map((c) => h.cookieValueIn(c, previous.name)).find(Boolean);
  assert.equal(successor, current.value, 'the same successor, not a new branch');

  // Nothing was taken for theft: the app goes on.
  assert.equal(await h.appRefresh(page), true);
  assert.equal((await h.callApiByButton(page)).status, '200');
  h.assertNoAppErrors(context);
});
