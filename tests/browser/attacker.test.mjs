// Cross-site request forgery against the browser endpoints: pages on another origin of the same
// site (evil.ostiary.localhost) and on another site (evil.localhost), opened in the signed-in
// victim's browser, try to make the IdP rotate (use up) the victim's refresh cookie.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import * as h from './harness.mjs';

const env = h.useDemo();
let evil;
// A server that records the Cookie header of what it gets. Reached as
// auth.ostiary.localhost:<its port>, it is sent exactly the cookies the IdP would be sent (cookies
// ignore ports), which Playwright does not report reliably for no-cors fetches.
let mirror;
const mirrored = [];

before(async () => {
  // (The demo starts in another before hook: read its URL when the page is asked for.)
  const url = () => `${env.demo.issuer}/browser/token?client_id=${h.CLIENT_ID}`;
  evil = await h.serveHtml({
    '/': '<!doctype html><meta charset="utf-8"><title>Free prizes</title><h1>Nothing to see here</h1>',
    '/form': () => `<!doctype html><meta charset="utf-8"><title>Free prizes</title>
      <h1>Claiming your prize…</h1>
      <form method="post" action="${url()}" enctype="application/x-www-form-urlencoded">
        <input type="hidden" name="grant_type" value="refresh_token">
      </form>
      <script>document.forms[0].submit()</script>`,
  });
  mirror = http.createServer((req, res) => {
    mirrored.push({ origin: req.headers.origin, cookie: req.headers.cookie || '' });
    res.end();
  });
  await new Promise((resolve) => mirror.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  await evil?.close();
  mirror?.closeAllConnections();
  await new Promise((resolve) => (mirror ? mirror.close(resolve) : resolve()));
});

for (const [kind, host] of [
  ['same-site', 'evil.ostiary.localhost'],
  ['cross-site', 'evil.localhost'],
]) {
  test(`attacker page on ${host} (${kind}) cannot use the victim's refresh cookie`, { timeout: 60_000 }, async (t) => {
    const { demo } = env;
    const context = await h.newContext(t, env);
    const traffic = h.recordTraffic(context, demo);
    const victim = await context.newPage();
    await h.signIn(victim, demo);
    await traffic.settled();
    const refreshBefore = await h.refreshCookie(context);
    const sessionBefore = await h.sessionCookie(context);
    const exchangesBefore = traffic.tokenExchanges.length;

    const attacker = await context.newPage();
    const origin = `http://${host}:${evil.port}`;
    await attacker.goto(`${origin}/`);
    assert.equal(await attacker.evaluate(() => document.cookie), '', 'the IdP cookies are invisible to the attacker page');
    await h.shot(attacker, `attacker-${kind}-page`);

    const results = await attacker.evaluate(async ([url, logoutUrl, mirrorUrl]) => {
      const attempt = async (init) => {
        try {
          const { url: target = url, ...rest } = init;
          const response = await fetch(target, { method: 'POST', credentials: 'include', body: 'grant_type=refresh_token', ...rest });
          let body = null;
          try {
            body = await response.text();
          } catch {
            // opaque
          }
          return { resolved: true, type: response.type, status: response.status, body };
        } catch (e) {
          return { resolved: false, name: e.name, message: e.message };
        }
      };
      await fetch(mirrorUrl, { method: 'POST', mode: 'no-cors', credentials: 'include', body: 'grant_type=refresh_token' });
      return {
        cors: await attempt({ headers: { 'X-Ostiary-CSRF': '1', 'Content-Type': 'application/x-www-form-urlencoded' } }),
        noCors: await attempt({ mode: 'no-cors', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }),
        // no-cors mode silently drops the custom header: the IdP must not see it.
        noCorsWithHeader: await attempt({ mode: 'no-cors', headers: { 'X-Ostiary-CSRF': '1', 'Content-Type': 'application/x-www-form-urlencoded' } }),
        // And a forced sign-out (logout CSRF), both ways.
        logoutCors: await attempt({ url: logoutUrl, headers: { 'X-Ostiary-CSRF': '1' } }),
        logoutNoCors: await attempt({ url: logoutUrl, mode: 'no-cors' }),
      };
    }, [
      `${demo.issuer}/browser/token?client_id=${h.CLIENT_ID}`,
      `${demo.issuer}/browser/logout?client_id=${h.CLIENT_ID}`,
      `http://${h.IDP_HOST}:${mirror.address().port}/browser/token`,
    ]);
    // What such a request carries to the IdP's host.
    const sent = mirrored.splice(0);
    assert.equal(sent.length, 1);
    assert.equal(sent[0].origin, origin, 'the browser names the attacker origin');
    const carried = h.cookieValueIn(sent[0].cookie, refreshBefore.name) === refreshBefore.value;
    if (kind === 'cross-site') {
      assert.equal(carried, false, 'SameSite=Strict keeps the refresh cookie off cross-site requests');
    }
    t.diagnostic(`a no-cors POST from ${origin} carries the refresh cookie: ${carried}`);

    for (const key of ['cors', 'logoutCors']) {
      assert.equal(results[key].resolved, false, `${key}: the CORS fetch must fail: ${JSON.stringify(results[key])}`);
      assert.equal(results[key].name, 'TypeError', `${key}: rejected by CORS (TypeError)`);
    }
    for (const key of ['noCors', 'noCorsWithHeader', 'logoutNoCors']) {
      assert.equal(results[key].resolved, true, JSON.stringify(results[key]));
      assert.equal(results[key].type, 'opaque', `${key}: the page can read nothing`);
      assert.equal(results[key].status, 0);
      assert.equal(results[key].body, '');
    }

    // An HTML form POST, submitted by script on load: a top-level navigation to the IdP.
    const [formAnswer] = await Promise.all([
      attacker.waitForResponse((r) => r.url().startsWith(`${demo.issuer}/browser/token`) && r.request().method() === 'POST'),
      attacker.goto(`${origin}/form`),
    ]);
    assert.equal(formAnswer.status(), 403, 'the IdP refuses the form POST');
    const formHeaders = await formAnswer.allHeaders();
    assert.equal(formHeaders['set-cookie'], undefined, 'the refused form POST sets no cookie');
    assert.equal(formHeaders['access-control-allow-origin'], undefined);
    await attacker.waitForURL((u) => u.origin === demo.issuer);
    await h.shot(attacker, `attacker-${kind}-form-post`);

    // Every attempt that reached the IdP was refused and changed no cookie.
    await traffic.settled();
    const attacks = traffic.tokenExchanges.slice(exchangesBefore);
    assert.ok(attacks.length >= 3, `the no-cors fetches and the form reached the IdP: ${attacks.length}`);
    for (const a of attacks) {
      assert.equal(a.status, 403, JSON.stringify(a));
      assert.equal(a.setCookie, '', 'a refused request sets no cookie');
    }
    const refreshAfter = await h.refreshCookie(context);
    assert.equal(refreshAfter?.value, refreshBefore.value, 'the refresh cookie did not rotate');
    assert.equal((await h.sessionCookie(context))?.value, sessionBefore.value, 'the session cookie is unchanged (not signed out)');

    // The victim's app still works, and its next refresh rotates the same (still current) cookie.
    await attacker.close();
    assert.equal(await h.appRefresh(victim), true, "the victim's app can still refresh");
    await traffic.settled();
    const own = traffic.tokenExchanges.at(-1);
    assert.equal(h.cookieValueIn(own.requestCookie, refreshBefore.name), refreshBefore.value);
    assert.notEqual((await h.refreshCookie(context)).value, refreshBefore.value, 'rotated by the victim only');
    assert.equal((await h.callApiByButton(victim)).status, '200');
    h.assertNoAppErrors(context);
  });
}
