// Shared harness of the Node interoperability tests: one `ostiary serve` per test file, set up
// only through the CLI (as tests/interop/conftest.py does), a user agent that signs in on the
// IdP's HTML form, a recording fetch, RFC 7638 thumbprints and access-token checks made with
// node:crypto, and a small resource server that asks `ostiary token verify` about each request.
//
// `const env = useServer();` registers node:test before/after hooks; inside a test,
// `env.server` is ready. The server is stopped with SIGTERM afterwards and must exit 0.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createPublicKey, randomBytes, verify as verifySignature } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';

export const SCOPE = 'openid profile offline_access';
export const USERNAME = 'alice';
/** The resource (RFC 8707) the public clients' access tokens are for: the resource server's. */
export const API_RESOURCE = 'https://api.interop.test';
// Native clients register a loopback redirect without a port and use any (RFC 8252 §7.3).
const REDIRECT_REGISTERED = 'http://127.0.0.1/native/callback';
export const REDIRECT_URI = 'http://127.0.0.1:53682/native/callback';

const READY_LINE = /^ostiary listening on (http:\/\/127\.0\.0\.1:(\d+)) \(issuer (\S+)\)$/;
const STARTUP_MS = 30_000;
const HEALTH_MS = 10_000;
const STOP_MS = 15_000;
const CLI_MS = 60_000;
const MAX_HOPS = 10;

const children = new Set();
process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')));

/** The environment without the OSTIARY_* settings of whoever runs the tests. */
function cleanEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OSTIARY_')));
}

function ostiaryBin() {
  const bin = process.env.OSTIARY_BIN;
  assert.ok(bin, 'OSTIARY_BIN is not set: run scripts/interop-node.sh, or point it at target/debug/ostiary');
  fs.accessSync(bin, fs.constants.X_OK);
  return bin;
}

/** Runs `bin args…`; resolves to { code, stdout, stderr }. */
export function runCli(bin, args, { input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_MS);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: signal ? `signal ${signal}` : code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

async function addClient(bin, dbUrl, clientId, ...args) {
  const out = await runCli(bin, ['client', 'add', clientId, '--json', '--database-url', dbUrl, ...args]);
  assert.equal(out.code, 0, `client add ${clientId} failed: ${out.stderr}`);
  const registration = JSON.parse(out.stdout);
  assert.equal(registration.client_secret, undefined, 'a public client has no secret');
  return { clientId: registration.client_id, redirectUri: REDIRECT_URI, resource: API_RESOURCE, registration };
}

/** The first line the child prints on stdout, within `ms`. */
function firstLine(child, ms) {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`ostiary serve printed nothing in ${ms} ms`)), ms);
    const onData = (chunk) => {
      buffer += chunk;
      const end = buffer.indexOf('\n');
      if (end >= 0) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.stdout.resume(); // keep draining: a full pipe would block the server
        resolve(buffer.slice(0, end));
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`ostiary serve exited with ${code} before listening`)));
  });
}

async function waitHealthy(baseUrl, child) {
  const deadline = Date.now() + HEALTH_MS;
  let last;
  for (;;) {
    assert.equal(child.exitCode, null, 'ostiary serve exited before /healthz answered');
    try {
      const response = await fetch(`${baseUrl}/healthz`);
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (e) {
      last = e.message;
    }
    assert.ok(Date.now() < deadline, `/healthz did not answer 200 within ${HEALTH_MS} ms (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 50)); // bounded polling, not a fixed wait
  }
}

async function startServer() {
  const bin = ostiaryBin();
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'ostiary-interop-node-'));
  const dbUrl = `sqlite://${path.join(workdir, 'ostiary.db')}`; // absolute: sqlite:///tmp/...
  const password = randomBytes(18).toString('base64url');

  const added = await runCli(bin, ['user', 'add', USERNAME, '--password-stdin', '--database-url', dbUrl], {
    input: `${password}\n`,
  });
  assert.equal(added.code, 0, `user add failed: ${added.stderr}`);
  const sub = /\(sub (\S+)\)/.exec(added.stdout)?.[1];
  assert.ok(sub, `user add printed no sub: ${added.stdout}`);

  const clients = {
    // DPoP optional: the tokens are bound because the library sends proofs.
    public: await addClient(bin, dbUrl, 'node-native', '--public', '--redirect-uri', REDIRECT_REGISTERED, '--resource', API_RESOURCE),
    // Proofs required, each with a fresh server nonce (RFC 9449 §8).
    nonce: await addClient(bin, dbUrl, 'node-native-nonce', '--public', '--require-dpop', '--require-dpop-nonce',
      '--redirect-uri', REDIRECT_REGISTERED, '--resource', API_RESOURCE),
  };

  const logPath = path.join(workdir, 'server.log');
  const log = fs.createWriteStream(logPath);
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--database-url', dbUrl], {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.stderr.pipe(log);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const server = { bin, dbUrl, workdir, logPath, password, sub, clients, child, exited, log };
  try {
    const line = await firstLine(child, STARTUP_MS);
    const match = READY_LINE.exec(line);
    assert.ok(match, `unexpected first line from ostiary serve: ${JSON.stringify(line)}`);
    server.baseUrl = match[1];
    server.issuer = match[3];
    await waitHealthy(server.baseUrl, child);
    server.metadata = await (await fetch(`${server.baseUrl}/.well-known/openid-configuration`)).json();
    assert.equal(server.metadata.issuer, server.issuer);
    return server;
  } catch (e) {
    await stopServer(server).catch(() => {});
    throw e;
  }
}

async function stopServer(server) {
  const { child } = server;
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(null), STOP_MS)));
  const result = await Promise.race([server.exited, timeout]);
  clearTimeout(timer);
  children.delete(child);
  if (result === null) {
    child.kill('SIGKILL');
    throw new Error(`ostiary serve did not stop within ${STOP_MS} ms of SIGTERM; log: ${server.logPath}`);
  }
  await new Promise((resolve) => server.log.end(resolve));
  assert.deepEqual(result, { code: 0, signal: null }, `ostiary serve did not exit cleanly after SIGTERM; log: ${server.logPath}`);
  fs.rmSync(server.workdir, { recursive: true, force: true });
}

/** One server for the test file: `env.server` inside tests, and with `resourceServer`,
 * `env.rs` (see startResourceServer). */
export function useServer({ resourceServer = false } = {}) {
  const env = {};
  before(async () => {
    env.server = await startServer();
    if (resourceServer) env.rs = await startResourceServer(env.server);
  });
  after(async () => {
    await env.rs?.close();
    if (env.server) await stopServer(env.server);
  });
  return env;
}

// ---------------------------------------------------------------------------------------------
// The user agent: cookies, redirects followed by hand, the login form.

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#x27': "'" };
const unescapeHtml = (s) => s.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (_, e) => ENTITIES[e]);
const attributes = (tag) =>
  Object.fromEntries([...tag.matchAll(/([\w-]+)="([^"]*)"/g)].map(([, k, v]) => [k.toLowerCase(), unescapeHtml(v)]));

/** The form with a password field: { action, method, fields }. */
function loginForm(html) {
  for (const [, open, inner] of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const inputs = [...inner.matchAll(/<input\b[^>]*>/gi)].map(([tag]) => attributes(tag));
    if (inputs.some((i) => i.type === 'password')) {
      const form = attributes(open);
      const fields = Object.fromEntries(inputs.filter((i) => i.name).map((i) => [i.name, i.value ?? '']));
      return { action: form.action ?? '', method: (form.method ?? 'get').toLowerCase(), fields };
    }
  }
  return null;
}

/**
 * One browser: its own cookie jar (so its own IdP session). Like a browser, it sends `Secure`
 * cookies to http://127.0.0.1, a potentially trustworthy origin.
 */
export class Browser {
  #jar = new Map(); // host -> Map(name -> value)

  #cookieHeader(url) {
    const jar = this.#jar.get(url.host);
    return jar && jar.size ? [...jar].map(([k, v]) => `${k}=${v}`).join('; ') : undefined;
  }

  #store(url, response) {
    const jar = this.#jar.get(url.host) ?? new Map();
    this.#jar.set(url.host, jar);
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const gone = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
      if (gone) jar.delete(name);
      else jar.set(name, pair.slice(eq + 1).trim());
    }
  }

  /** Follows `authorizationUrl` until the IdP redirects to `redirectUri`, signing in on the way.
   * Resolves to the URL of that redirect (with `code` or `error`), which it does not fetch. */
  async authorize(authorizationUrl, redirectUri, username, password) {
    const target = new URL(redirectUri);
    let request = { method: 'GET', url: new URL(authorizationUrl) };
    let signedIn = false;
    const hops = [];
    for (let i = 0; i < MAX_HOPS; i++) {
      const headers = { cookie: this.#cookieHeader(request.url) };
      if (request.body) {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        headers.origin = request.url.origin; // a form posted from the IdP's own page
      }
      const response = await fetch(request.url, { method: request.method, headers, body: request.body, redirect: 'manual' });
      hops.push(`${request.method} ${request.url} -> ${response.status}`);
      this.#store(request.url, response);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        const next = new URL(location, request.url);
        if (next.origin === target.origin && next.pathname === target.pathname) return next;
        request = { method: 'GET', url: next };
        continue;
      }
      const html = await response.text();
      const form = response.status === 200 ? loginForm(html) : null;
      assert.ok(form, `expected a redirect or the login form, got ${response.status}:\n${html.slice(0, 1500)}\n${hops.join('\n')}`);
      assert.ok(!signedIn, `the login form came back after signing in:\n${html.slice(0, 1500)}`);
      assert.equal(form.method, 'post');
      assert.ok(form.fields.csrf_token, 'the login form has a csrf_token');
      const body = new URLSearchParams({ ...form.fields, username, password });
      request = { method: 'POST', url: new URL(form.action, request.url), body: body.toString() };
      signedIn = true;
    }
    assert.fail(`no redirect to ${redirectUri} after ${MAX_HOPS} hops:\n${hops.join('\n')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// What went over the wire, keys, tokens.

/** A fetch that records every exchange (for a library's customFetch option). */
export function recordingFetch() {
  const exchanges = [];
  const recorder = async (url, init = {}) => {
    const response = await fetch(url, init);
    const requestHeaders = new Headers(init.headers);
    exchanges.push({
      method: init.method ?? 'GET',
      url: String(url),
      requestHeaders,
      proof: requestHeaders.get('dpop') ? jwtParts(requestHeaders.get('dpop')) : null,
      status: response.status,
      headers: response.headers,
      body: await response.clone().text(),
    });
    return response;
  };
  return { fetch: recorder, exchanges };
}

/** A JWT's decoded header and payload (no verification). */
export function jwtParts(jwt) {
  const [header, payload] = jwt.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
  return { header, payload };
}

/** RFC 7638: SHA-256 over the required members in lexical order, no whitespace, base64url. */
export function jwkThumbprint(jwk) {
  const required = { EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'], RSA: ['e', 'kty', 'n'] }[jwk.kty];
  assert.ok(required, `unexpected kty ${jwk.kty}`);
  const canonical = `{${required.map((m) => `${JSON.stringify(m)}:${JSON.stringify(jwk[m])}`).join(',')}}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

/** The thumbprint of a WebCrypto key pair's public key, from its exported JWK. */
export async function keyThumbprint(keyPair) {
  return jwkThumbprint(await crypto.subtle.exportKey('jwk', keyPair.publicKey));
}

/** Checks an access token (RFC 9068) with node:crypto and the published JWKS: ES256 signature,
 * typ, iss, aud, exp. Resolves to its claims. */
export async function verifyAccessToken(server, token, audience = API_RESOURCE) {
  const [h, p, s] = token.split('.');
  const { header, payload } = jwtParts(token);
  assert.equal(header.typ, 'at+jwt');
  assert.equal(header.alg, 'ES256');
  const jwks = await (await fetch(server.metadata.jwks_uri)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `no key ${header.kid} in the JWKS`);
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const valid = verifySignature('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
  assert.ok(valid, 'the access token signature verifies with the JWKS');
  assert.equal(payload.iss, server.issuer);
  assert.ok([payload.aud].flat().includes(audience), `aud ${JSON.stringify(payload.aud)} includes ${audience}`);
  assert.ok(payload.exp > Date.now() / 1000, 'not expired');
  return payload;
}

/** Rethrows a library's OAuth error with the response body in its message (node:test shows
 * the message, not the cause). */
export function explainError(err) {
  if (err?.cause && typeof err.cause === 'object' && 'error' in err.cause) {
    err.message += `: ${JSON.stringify(err.cause)}`;
  }
  throw err;
}

/** A token request made by hand (no library, no proof unless given). */
export async function tokenRequest(server, params, headers = {}) {
  const response = await fetch(server.metadata.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params).toString(),
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

// ---------------------------------------------------------------------------------------------
// A resource server that knows nothing but the issuer, its JWKS and its own URL: each request's
// `Authorization` and `DPoP` headers go to `ostiary token verify` (RFC 9449 §7.1 checks).

export async function startResourceServer(server, audience = API_RESOURCE) {
  const requests = [];
  const httpServer = http.createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const url = `http://127.0.0.1:${httpServer.address().port}${req.url}`;
    const [, scheme, token] = /^(\S+) +(\S+)$/.exec(req.headers.authorization ?? '') ?? [];
    const record = { method: req.method, url, scheme, proof: req.headers.dpop, body };
    requests.push(record);
    const challenge = (error) => `DPoP error="${error}", algs="ES256 EdDSA"`;
    if (!token) {
      res.writeHead(401, { 'www-authenticate': 'DPoP algs="ES256 EdDSA"' }).end();
      return;
    }
    const args = ['token', 'verify', token, '--jwks', server.metadata.jwks_uri, '--issuer', server.issuer, '--audience', audience];
    // Only the DPoP scheme brings its proof to the check; a bound token without one is refused.
    if (scheme.toLowerCase() === 'dpop' && record.proof) args.push('--dpop-proof', record.proof, '--method', req.method, '--url', url);
    const out = await runCli(server.bin, args);
    record.exit = out.code;
    record.verdict = JSON.parse(out.stdout || '{}');
    if (out.code === 0) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ sub: record.verdict.sub, method: req.method, body }));
    } else {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': challenge('invalid_token') });
      res.end(JSON.stringify(record.verdict));
    }
  });
  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, '127.0.0.1', resolve);
  });
  return {
    url: (p) => new URL(p, `http://127.0.0.1:${httpServer.address().port}`),
    requests,
    close: () => new Promise((resolve) => httpServer.close(resolve)),
  };
}
