// A copy of the refresh cookie, stolen (e.g. from the disk) and used later from elsewhere: the
// IdP sees an old generation come back and ends the whole session, for the thief and the victim.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as h from './harness.mjs';

const env = h.useDemo();

test('a stolen refresh cookie, replayed after two rotations, ends the session in every tab', { timeout: 60_000 }, async (t) => {
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

  // The thief replays it, forging the app's Origin and the CSRF header: refused, and the IdP
  // ends the session.
  const replay = await h.replayRefreshCookie(demo, stolen.name, stolen.value);
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
  const again = await h.replayRefreshCookie(demo, current.name, current.value);
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

test('a copy one generation old, replayed within the grace window, gets the same successor', { timeout: 60_000 }, async (t) => {
  const { demo } = env;
  const context = await h.newContext(t, env);
  const page = await context.newPage();
  await h.signIn(page, demo);
  const previous = await h.refreshCookie(context);
  assert.equal(await h.appRefresh(page), true);
  const current = await h.refreshCookie(context);
  assert.notEqual(current.value, previous.value);

  // (Within the 10 s grace window: this is what a lost answer's retry looks like.)
  const replay = await h.replayRefreshCookie(demo, previous.name, previous.value);
  assert.equal(replay.status, 200, JSON.stringify(replay.body));
  assert.equal(replay.body.refresh_token, undefined, 'a browser client never gets the refresh token in a body');
  const successor = replay.setCookies.map((c) => h.cookieValueIn(c, previous.name)).find(Boolean);
  assert.equal(successor, current.value, 'the same successor, not a new branch');

  // Nothing was taken for theft: the app goes on.
  assert.equal(await h.appRefresh(page), true);
  assert.equal((await h.callApiByButton(page)).status, '200');
  h.assertNoAppErrors(context);
});
