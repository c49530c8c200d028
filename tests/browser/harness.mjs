// Test harness for the real-browser tests: starts `ostiary demo` on free loopback ports, waits
// until its three servers answer, launches Debian's Chromium through playwright-core, and stops
// everything afterwards (also when a test fails or the process is interrupted).
//
// Used by every *.test.mjs file here: `const env = useDemo();` registers before/after hooks of
// node:test; inside a test, `env.demo` and `env.browser` are ready.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts', 'browser');
export const CLIENT_ID = 'demo-spa';
export const USERNAME = 'demo';
export const PASSWORD = `browser-test-${randomBytes(9).toString('base64url')}`;
export const REFRESH_COOKIE_PREFIX = '__Host-ostiary_refresh_';
export const SESSION_COOKIE = '__Host-ostiary_session';
export const IDP_HOST = 'auth.ostiary.localhost';
export const APP_HOST = 'app.ostiary.localhost';
export const API_HOST = 'api.ostiary.localhost';

const OSTIARY_BIN = process.env.OSTIARY_BIN || path.join(REPO_ROOT, 'target', 'debug', 'ostiary');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STARTUP_DEADLINE_MS = 30_000;
const STOP_DEADLINE_MS = 10_000;
/** Playwright's timeout for every wait in a context (a wait that needs more is a failure). */
export const WAIT_MS = 15_000;

// ---------------------------------------------------------------------------------------------
// Child processes: never left behind.

const children = new Set();

function killChildrenNow() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

// 'exit' handlers run on normal exit, uncaught exceptions and process.exit(); signals need
// their own handlers (their default action would skip 'exit'). Playwright registers the same
// for the browser it launched.
process.on('exit', killChildrenNow);
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(signal, () => {
    killChildrenNow();
    process.exit(code);
  });
}

// ---------------------------------------------------------------------------------------------
// Ports and polling.

/** `count` distinct ports that were free on 127.0.0.1 a moment ago. */
export async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      servers.push(server);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/**
 * Polls `check` (async, truthy = done) every `intervalMs` until `deadlineMs` has passed; gives
 * up at once when `stopIf()` returns a reason.
 */
export async function pollUntil(what, check, { deadlineMs = STARTUP_DEADLINE_MS, intervalMs = 50, stopIf = () => null } = {}) {
  const deadline = Date.now() + deadlineMs;
  let last;
  for (;;) {
    const stop = stopIf();
    if (stop) throw new Error(`${stop} while waiting for ${what}`);
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// ---------------------------------------------------------------------------------------------
// The demo.

class PortClash extends Error {}

/**
 * Starts `ostiary demo` on free ports (retrying with other ports if one was taken in between)
 * and resolves once the IdP's /healthz, the API and the app all answer.
 */
export async function startDemo({ accessTokenTtl = 4, apiLeeway = 0 } = {}) {
  assert.ok(fs.existsSync(OSTIARY_BIN), `ostiary binary not found at ${OSTIARY_BIN} (set OSTIARY_BIN or run scripts/browser-tests.sh)`);
  for (let attempt = 1; ; attempt++) {
    const [idpPort, apiPort, appPort] = await freePorts(3);
    try {
      return await startDemoOn({ idpPort, apiPort, appPort, accessTokenTtl, apiLeeway });
    } catch (e) {
      if (!(e instanceof PortClash) || attempt >= 3) throw e;
    }
  }
}

async function startDemoOn({ idpPort, apiPort, appPort, accessTokenTtl, apiLeeway }) {
  const args = [
    'demo',
    '--idp-port', String(idpPort),
    '--api-port', String(apiPort),
    '--app-port', String(appPort),
    '--access-token-ttl', String(accessTokenTtl),
    '--api-leeway', String(apiLeeway),
  ];
  const child = spawn(OSTIARY_BIN, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, OSTIARY_DEMO_PASSWORD: PASSWORD, RUST_LOG: process.env.RUST_LOG || 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  const keep = (chunk) => {
    output += chunk.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  let exitStatus = null;
  exited.then((status) => {
    exitStatus = status;
  });

  const demo = {
    idpPort,
    apiPort,
    appPort,
    issuer: `http://${IDP_HOST}:${idpPort}`,
    appUrl: `http://${APP_HOST}:${appPort}`,
    apiUrl: `http://${API_HOST}:${apiPort}`,
    /** What DPoP proofs name as `htu` (RFC 9449 §4.2): the public URLs, not the addresses. */
    tokenHtu: `http://${IDP_HOST}:${idpPort}/browser/token`,
    apiHtu: `http://${API_HOST}:${apiPort}/api/hello`,
    /** The same servers, by address: Node cannot resolve *.localhost (the servers ignore Host). */
    idpDirect: `http://127.0.0.1:${idpPort}`,
    apiDirect: `http://127.0.0.1:${apiPort}`,
    appDirect: `http://127.0.0.1:${appPort}`,
    output: () => output,
    /** SIGTERM, then wait; SIGKILL only if it did not stop in time. Resolves how it ended. */
    async stop() {
      if (exitStatus) return { ...exitStatus, forced: false };
      child.kill('SIGTERM');
      let handle;
      const timer = new Promise((resolve) => {
        handle = setTimeout(() => resolve(null), STOP_DEADLINE_MS);
      });
      const status = await Promise.race([exited, timer]);
      clearTimeout(handle);
      if (status) return { ...status, forced: false };
      child.kill('SIGKILL');
      return { ...(await exited), forced: true };
    },
  };

  const answers = async (url) => {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    return response.ok;
  };
  try {
    await pollUntil(
      'the demo to answer (IdP /healthz, API /, app /config.json)',
      async () => {
        const ok = await Promise.all([
          answers(`${demo.idpDirect}/healthz`),
          answers(`${demo.apiDirect}/`),
          answers(`${demo.appDirect}/config.json`),
        ]);
        return ok.every(Boolean);
      },
      { stopIf: () => exitStatus && `ostiary demo exited early (${JSON.stringify(exitStatus)})` },
    );
  } catch (e) {
    await demo.stop();
    if (/address (already )?in use/i.test(output)) throw new PortClash(output);
    throw new Error(`${e.message}\n--- ostiary demo output ---\n${output}`);
  }
  return demo;
}

// ---------------------------------------------------------------------------------------------
// The browser.

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
    timeout: 30_000,
  });
}

/**
 * Registers node:test hooks for this file: one demo and one Chromium, started before the first
 * test and stopped after the last. Returns an object whose `demo` and `browser` are set then.
 */
export function useDemo(options = {}) {
  const env = { demo: null, browser: null };
  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    env.demo = await startDemo(options);
    env.browser = await launchBrowser();
  });
  after(async () => {
    // The browser first: its keep-alive connections would otherwise hold up the servers'
    // graceful shutdown.
    await env.browser?.close().catch(() => {});
    const stopped = await env.demo?.stop();
    if (stopped?.forced) {
      throw new Error(`ostiary demo did not stop within ${STOP_DEADLINE_MS} ms of SIGTERM and was killed`);
    }
    if (stopped && stopped.code !== 0) {
      throw new Error(`ostiary demo ended with ${JSON.stringify(stopped)} on SIGTERM:\n${env.demo.output()}`);
    }
  });
  return env;
}

/**
 * A fresh browser context for test `t`, closed when the test ends. Uncaught errors of the demo
 * app's pages are collected in `context.appErrors`.
 */
export async function newContext(t, env) {
  const context = await env.browser.newContext();
  context.setDefaultTimeout(WAIT_MS);
  context.appErrors = [];
  context.on('page', (page) => watchPage(page, env.demo, context));
  t.after(() => context.close().catch(() => {}));
  return context;
}

function watchPage(page, demo, context) {
  page.on('pageerror', (error) => {
    if (page.url().startsWith(demo.appUrl)) context.appErrors.push(`${page.url()}: ${error.message}`);
  });
}

/** Fails if a demo-app page of `context` threw an uncaught error. */
export function assertNoAppErrors(context) {
  assert.deepEqual(context.appErrors, [], 'the demo app threw uncaught errors');
}

// ---------------------------------------------------------------------------------------------
// The demo app.

/** Waits until the app has finished loading (or failed) and returns `ostiaryDemo.state()`. */
export async function waitReady(page) {
  await page.waitForSelector('body[data-ready=true], #state-line[data-state=error]', { state: 'attached' });
  const line = await page.locator('#state-line');
  const kind = await line.getAttribute('data-state');
  assert.notEqual(kind, 'error', `the app shows an error: ${await line.textContent()}`);
  return page.evaluate(() => window.ostiaryDemo.state());
}

/** Opens the app in `page` and returns its state once loaded. */
export async function openApp(page, demo) {
  await page.goto(`${demo.appUrl}/`);
  return waitReady(page);
}

/** Waits until the page's state line says `kind` (signed-in, signed-out, error). */
export async function expectStateLine(page, kind) {
  await page.waitForSelector(`#state-line[data-state=${kind}]`, { state: 'attached' });
}

/**
 * Signs in from the app's "Sign in" button through the IdP's login page. Screenshots the two
 * pages on the way as `${shots}-signed-out.png` / `${shots}-idp-login.png` if `shots` is set.
 * Returns the app's state afterwards.
 */
export async function signIn(page, demo, { shots } = {}) {
  const before = await openApp(page, demo);
  assert.equal(before.signedIn, false, 'expected to start signed out');
  await expectStateLine(page, 'signed-out');
  assert.ok(await page.isVisible('#sign-in'), 'the Sign in button is visible when signed out');
  if (shots) await shot(page, `${shots}-signed-out`);

  await page.click('#sign-in');
  await page.waitForURL((url) => url.origin === demo.issuer && url.pathname === '/login');
  await page.waitForSelector('#username');
  if (shots) await shot(page, `${shots}-idp-login`);
  await page.fill('#username', USERNAME);
  await page.fill('#password', PASSWORD);
  await page.click('button[type=submit]');

  await page.waitForURL((url) => url.origin === demo.appUrl);
  const state = await waitReady(page);
  await expectStateLine(page, 'signed-in');
  assert.equal(state.signedIn, true);
  assert.equal(state.username, USERNAME);
  return state;
}

export async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** The app's state in `page`. */
export function appState(page) {
  return page.evaluate(() => window.ostiaryDemo.state());
}

/** `ostiaryDemo.refresh(options)` in `page`: resolves what the app's refresh resolved. */
export function appRefresh(page, options) {
  return page.evaluate((o) => window.ostiaryDemo.refresh(o), options);
}

// ---------------------------------------------------------------------------------------------
// Cookies, tokens and the servers, seen from outside the browser.

/** The IdP's refresh cookie for the demo app in `context`'s jar (undefined if none). */
export async function refreshCookie(context) {
  const found = (await context.cookies()).filter((c) => c.name.startsWith(REFRESH_COOKIE_PREFIX));
  assert.ok(found.length <= 1, `more than one refresh cookie: ${found.map((c) => `${c.name}@${c.domain}`)}`);
  return found[0];
}

/** The IdP's session cookie in `context`'s jar (undefined if none). */
export async function sessionCookie(context) {
  return (await context.cookies()).find((c) => c.name === SESSION_COOKIE);
}

/** Claims of a JWT (not verified: only for reading `jti` and `exp`). */
export function jwtClaims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

/**
 * Calls the demo API directly (from Node) with `accessToken`: as a bearer token when `proof` is
 * undefined, else under the `DPoP` scheme with `proof` in the `DPoP` header (none if empty).
 * Resolves `{status, reason, challenges}` (the body's `reason`, the `WWW-Authenticate` values).
 */
export async function apiCall(demo, accessToken, proof) {
  const headers = proof === undefined ? { Authorization: `Bearer ${accessToken}` } : { Authorization: `DPoP ${accessToken}` };
  if (proof) headers.DPoP = proof;
  const response = await fetch(`${demo.apiDirect}/api/hello`, { headers });
  const body = await response.json().catch(() => ({}));
  return { status: response.status, reason: body.reason, challenges: response.headers.get('www-authenticate') || '' };
}

/** The HTTP status of `apiCall(demo, accessToken, proof)`. */
export async function apiStatus(demo, accessToken, proof) {
  return (await apiCall(demo, accessToken, proof)).status;
}

/**
 * What script injected into the app's origin can do with the app's DPoP key pair, which it
 * finds in IndexedDB (`ostiary-demo`, store `keys`, `dpop`): `action` 'sign' makes a proof
 * (`args`: htm, htu, accessToken, iat in Unix seconds, default now); 'export' tries to export the
 * private key as JWK and PKCS#8 and resolves `{extractable, exported}` (each attempt's outcome).
 */
function useAppKey(page, action, args = {}) {
  return page.evaluate(async ({ action, args }) => {
    const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    const json = (value) => b64(new TextEncoder().encode(JSON.stringify(value)));
    const result = (request) => new Promise((resolve, reject) => {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const db = await result(indexedDB.open('ostiary-demo'));
    const pair = await result(db.transaction('keys').objectStore('keys').get('dpop'));
    db.close();
    if (!pair) throw new Error('the app has no DPoP key in IndexedDB');
    if (action === 'export') {
      const exported = [];
      for (const format of ['jwk', 'pkcs8']) {
        exported.push(await crypto.subtle.exportKey(format, pair.privateKey).then(() => `${format}: exported`, (e) => e.name));
      }
      return { extractable: pair.privateKey.extractable, exported };
    }
    const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey);
    const claims = { jti: crypto.randomUUID(), htm: args.htm, htu: args.htu, iat: args.iat ?? Math.floor(Date.now() / 1000) };
    if (args.accessToken) claims.ath = b64(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(args.accessToken)));
    const input = `${json({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } })}.${json(claims)}`;
    const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, new TextEncoder().encode(input));
    return `${input}.${b64(signature)}`;
  }, { action, args });
}

/**
 * A DPoP proof signed in `page` (on the app's origin) with the app's key, the way script
 * injected there could make one: the key is non-extractable, so such script can use it while it
 * runs on the page, but never copy it. `iat` defaults to now (Unix seconds).
 */
export function proofFromPage(page, { htm, htu, accessToken, iat }) {
  return useAppKey(page, 'sign', { htm, htu, accessToken, iat });
}

/** Injected script's attempt to export the app's private key: `{extractable, exported}`. */
export function exportAppKey(page) {
  return useAppKey(page, 'export');
}

/** A thief's own DPoP key pair (P-256, in Node): `proof({htm, htu, accessToken})`, `jkt`. */
export function thiefKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  const json = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return {
    jkt: createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url'),
    proof({ htm, htu, accessToken }) {
      const claims = { jti: randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000) };
      if (accessToken) claims.ath = createHash('sha256').update(accessToken).digest('base64url');
      const input = `${json({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } })}.${json(claims)}`;
      const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
      return `${input}.${signature.toString('base64url')}`;
    },
  };
}

/**
 * What someone holding a copy of the refresh cookie can do: POST /browser/token from Node, with
 * the app's Origin and the CSRF header forged (no browser in the way), and a DPoP `proof` if
 * given. Resolves `{status, body, setCookies}`.
 */
export async function replayRefreshCookie(demo, name, value, proof) {
  const response = await fetch(`${demo.idpDirect}/browser/token?client_id=${CLIENT_ID}`, {
    method: 'POST',
    headers: {
      Origin: demo.appUrl,
      'X-Ostiary-CSRF': '1',
      Cookie: `${name}=${value}`,
      'Content-Type': 'application/x-www-form-urlencoded',
      ...(proof ? { DPoP: proof } : {}),
    },
    body: 'grant_type=refresh_token',
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body, setCookies: response.headers.getSetCookie() };
}

/**
 * Records, for `context`, the access tokens the IdP handed out through /browser/token (as the
 * pages received them), and the main-frame navigations of its pages.
 */
export function recordTraffic(context, demo) {
  const pending = [];
  const log = {
    /** Access tokens of the successful /browser/token answers read so far, in order sent. */
    get tokens() {
      return this.tokenExchanges.filter((e) => e.body?.access_token).map((e) => e.body.access_token);
    },
    /**
     * Every POST /browser/token: {status, requestCookie, setCookie, body}, in order sent (body:
     * the JSON of a successful answer, else null).
     * (requestCookie is what Playwright reports: reliable for CORS fetches and navigations, but
     * empty for no-cors fetches even when Chromium sent cookies.)
     */
    tokenExchanges: [],
    /** Main-frame navigations of the context's pages (URLs). */
    navigations: [],
    /** Resolves once every answer seen so far has been read. */
    settled: () => Promise.all(pending.splice(0)),
  };
  const onPage = (page) => {
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) log.navigations.push(frame.url());
    });
  };
  context.pages().forEach(onPage);
  context.on('page', onPage);
  context.on('response', (response) => {
    const request = response.request();
    if (!response.url().startsWith(`${demo.issuer}/browser/token`) || request.method() !== 'POST') return;
    const entry = { status: response.status(), requestCookie: '', setCookie: '', body: null };
    log.tokenExchanges.push(entry);
    pending.push(
      (async () => {
        entry.requestCookie = (await request.allHeaders().catch(() => ({}))).cookie || '';
        entry.setCookie = (await response.allHeaders().catch(() => ({})))['set-cookie'] || '';
        // Only successful answers: Chromium hands a body to the debugger only once the page has
        // read it, and the app does not read the body of an error answer (it would wait forever).
        if (response.ok()) {
          let timer;
          const giveUp = new Promise((resolve) => {
            timer = setTimeout(resolve, 5000, null);
          });
          entry.body = await Promise.race([response.json().catch(() => null), giveUp]);
          clearTimeout(timer);
        }
      })(),
    );
  });
  return log;
}

/** Value of cookie `name` in a Cookie or Set-Cookie header text (undefined if absent). */
export function cookieValueIn(headerText, name) {
  for (const line of headerText.split('\n')) {
    for (const part of line.split(';')) {
      const [k, ...rest] = part.trim().split('=');
      if (k === name) return rest.join('=');
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// A hostile web server, for the CSRF tests.

/**
 * Serves `pages` (path -> HTML, or a function returning it, called per request) on 127.0.0.1
 * at a free port; resolves `{port, close()}`.
 * Any host name that resolves to loopback reaches it (evil.localhost, evil.ostiary.localhost).
 */
export async function serveHtml(pages) {
  const server = http.createServer((req, res) => {
    const page = pages[new URL(req.url, 'http://x').pathname];
    const html = typeof page === 'function' ? page() : page;
    if (html === undefined) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(html);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: server.address().port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(resolve);
      }),
  };
}

/**
 * Clicks the app's "Call the demo API" and waits for the answer it shows. Resolves
 * `{status, json}` (status as shown by the app: '200', '401', …).
 */
export async function callApiByButton(page) {
  await page.evaluate(() => {
    delete document.querySelector('#api-output').dataset.status;
  });
  await page.click('#call-api');
  await page.waitForSelector('#api-output[data-status]', { state: 'attached' });
  const status = await page.getAttribute('#api-output', 'data-status');
  const text = await page.textContent('#api-output');
  const body = text.slice(text.indexOf('\n\n') + 2);
  let json = null;
  try {
    json = JSON.parse(body);
  } catch {
    // not JSON (an error answer)
  }
  return { status, json, text };
}
