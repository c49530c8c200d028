// DPoP (RFC 9449) with oauth4webapi 3: its key pairs (`generateKeyPair`) and proofs (the
// `DPoP()` handle), each request made and its response processed by the library, against
// Ostiary's token and userinfo endpoints and a resource server that checks with
// `ostiary token verify`. Server nonces are retried the way the library's documentation says.

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as oauth from 'oauth4webapi';

import {
  Browser, REDIRECT_URI, SCOPE, USERNAME, explainError, jwtParts, keyThumbprint, recordingFetch, tokenRequest, useServer,
  verifyAccessToken,
} from './harness.mjs';

const env = useServer({ resourceServer: true });
const insecure = { [oauth.allowInsecureRequests]: true }; // the issuer is http://127.0.0.1:PORT
const clientAuth = oauth.None();

async function discover() {
  const issuer = new URL(env.server.issuer);
  const response = await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure });
  return oauth.processDiscoveryResponse(issuer, response);
}

/**
 * Sends `request()` and processes its answer with `process(response)`; on a `use_dpop_nonce`
 * error (the handle has cached the nonce from `DPoP-Nonce`) sends it once more, as the library's
 * DPoP example does. Resolves to { result, nonceRetries }.
 */
async function withNonceRetry(request, process) {
  try {
    return { result: await process(await request()), nonceRetries: 0 };
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) explainError(err);
    return { result: await process(await request()).catch(explainError), nonceRetries: 1 };
  }
}

/** The code flow with PKCE for `client`; the code is exchanged with a proof of `DPoP`. */
async function signIn(as, client, DPoP, options = {}) {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    scope: SCOPE,
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const callback = await new Browser().authorize(url.href, REDIRECT_URI, USERNAME, env.server.password);
  const params = oauth.validateAuthResponse(as, client, callback, state);
  return withNonceRetry(
    () => oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, REDIRECT_URI, codeVerifier, { DPoP, ...insecure, ...options }),
    (response) => oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: nonce, requireIdToken: true }),
  );
}

function refresh(as, client, refreshToken, DPoP, options = {}) {
  return withNonceRetry(
    () => oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshToken, { DPoP, ...insecure, ...options }),
    (response) => oauth.processRefreshTokenResponse(as, client, response),
  );
}

/** Asserts that `promise` is refused with the OAuth error `code` in the response body. */
async function refusedWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof oauth.ResponseBodyError, `a ResponseBodyError, got ${err}`);
    assert.equal(err.error, code);
    return true;
  });
}

const challenged = (err) => err instanceof oauth.WWWAuthenticateChallengeError && err.response.status === 401;

it('discoveryRequest/processDiscoveryResponse read the metadata with the DPoP proof algorithms', async () => {
  const as = await discover();
  assert.equal(as.issuer, env.server.issuer);
  assert.equal(as.userinfo_endpoint, `${env.server.issuer}/userinfo`);
  assert.ok(as.code_challenge_methods_supported.includes('S256'));
  assert.ok(Array.isArray(as.dpop_signing_alg_values_supported));
  assert.ok(as.dpop_signing_alg_values_supported.includes('ES256'));
});

describe('oauth4webapi DPoP with ES256 keys', () => {
  const s = {}; // what the steps below hand on

  before(async () => {
    s.as = await discover();
    s.client = { client_id: env.server.clients.public.clientId, token_endpoint_auth_method: 'none' };
    s.keyPair = await oauth.generateKeyPair('ES256');
    s.jkt = await keyThumbprint(s.keyPair);
    s.DPoP = oauth.DPoP(s.client, s.keyPair);
    s.otherDPoP = oauth.DPoP(s.client, await oauth.generateKeyPair('ES256'));
  });

  it('exchanges the code with a proof: token_type DPoP, cnf.jkt is the key thumbprint', async () => {
    const recorder = recordingFetch();
    const { result, nonceRetries } = await signIn(s.as, s.client, s.DPoP, { [oauth.customFetch]: recorder.fetch });
    assert.equal(nonceRetries, 0, 'this client needs no server nonce');
    assert.equal(result.token_type.toLowerCase(), 'dpop');
    const [exchange] = recorder.exchanges;
    assert.equal(JSON.parse(exchange.body).token_type.toLowerCase(), 'dpop', 'as the server sent it');
    assert.equal(exchange.proof.header.alg, 'ES256');
    assert.equal(oauth.getValidatedIdTokenClaims(result).sub, env.server.sub);
    const claims = await verifyAccessToken(env.server, result.access_token);
    assert.deepEqual(claims.cnf, { jkt: s.jkt });
    assert.equal(await s.DPoP.calculateThumbprint(), s.jkt, 'the library computes the same thumbprint');
    s.first = result;
    s.tokens = result;
  });

  it('refreshes with the same handle: a new, still bound access token and a rotated refresh token', async () => {
    assert.ok(s.tokens, 'needs the code exchange above');
    const { result } = await refresh(s.as, s.client, s.tokens.refresh_token, s.DPoP);
    assert.equal(result.token_type.toLowerCase(), 'dpop');
    assert.notEqual(result.refresh_token, s.tokens.refresh_token, 'the refresh token rotated');
    assert.deepEqual((await verifyAccessToken(env.server, result.access_token)).cnf, { jkt: s.jkt });
    s.tokens = result;
  });

  it('refuses a copy of the refresh token without a proof or with another key; the owner goes on', async () => {
    assert.ok(s.tokens, 'needs the refresh above');
    const bare = await tokenRequest(env.server, {
      grant_type: 'refresh_token', refresh_token: s.tokens.refresh_token, client_id: s.client.client_id,
    });
    assert.equal(bare.status, 400);
    assert.equal(bare.body.error, 'invalid_grant');
    await refusedWith(refresh(s.as, s.client, s.tokens.refresh_token, s.otherDPoP), 'invalid_grant');
    // Without the library's DPoP option, the request goes as a plain bearer refresh: refused too.
    await refusedWith(refresh(s.as, s.client, s.tokens.refresh_token, undefined), 'invalid_grant');

    const { result } = await refresh(s.as, s.client, s.tokens.refresh_token, s.DPoP);
    assert.notEqual(result.refresh_token, s.tokens.refresh_token);
    assert.deepEqual((await verifyAccessToken(env.server, result.access_token)).cnf, { jkt: s.jkt });
    s.tokens = result;
  });

  it('userInfoRequest with the handle returns the sub; the same token as Bearer is refused', async () => {
    assert.ok(s.tokens, 'needs the tokens above');
    const userinfo = (DPoP) => oauth.userInfoRequest(s.as, s.client, s.tokens.access_token, { DPoP, ...insecure });
    const info = await oauth.processUserInfoResponse(s.as, s.client, env.server.sub, await userinfo(s.DPoP));
    assert.equal(info.sub, env.server.sub);

    // The library itself, without the handle, sends `Authorization: Bearer`.
    const asBearer = await userinfo(undefined);
    assert.equal(asBearer.status, 401);
    assert.match(asBearer.headers.get('www-authenticate') ?? '', /DPoP/i);
    await assert.rejects(oauth.processUserInfoResponse(s.as, s.client, env.server.sub, asBearer), challenged);
    const otherKey = await userinfo(s.otherDPoP);
    assert.equal(otherKey.status, 401, 'a proof by another key');
  });

  it('protectedResourceRequest with the handle passes `ostiary token verify` at a resource server', async () => {
    assert.ok(s.tokens, 'needs the tokens above');
    const { rs } = env;
    const call = (method, path, DPoP, body) =>
      oauth.protectedResourceRequest(s.tokens.access_token, method, rs.url(path), undefined, body, { DPoP, ...insecure });
    const seen = rs.requests.length;
    const get = await call('GET', '/api/orders?page=2', s.DPoP);
    assert.equal(get.status, 200);
    assert.equal((await get.json()).sub, env.server.sub);
    const del = await call('DELETE', '/api/orders/7', s.DPoP);
    assert.equal(del.status, 200);
    assert.equal((await del.json()).method, 'DELETE');

    const [first, second] = rs.requests.slice(seen);
    assert.equal(first.scheme, 'DPoP');
    const proof = jwtParts(first.proof);
    assert.equal(proof.payload.htu, rs.url('/api/orders').href, 'htu without the query');
    assert.equal(proof.payload.htm, 'GET');
    assert.ok(proof.payload.ath, 'the proof is bound to the access token (ath)');
    assert.equal(jwtParts(second.proof).payload.htm, 'DELETE');

    for (const [DPoP, reason] of [[s.otherDPoP, 'dpop_key_mismatch'], [undefined, 'dpop_bound']]) {
      await assert.rejects(call('GET', '/api/orders', DPoP), challenged);
      assert.equal(rs.requests.at(-1).verdict.reason, reason);
    }
    assert.equal(rs.requests.at(-1).scheme, 'Bearer');
  });

  it('the first, rotated-out refresh token is reuse: refused, and it ends the family', async () => {
    assert.ok(s.first && s.tokens !== s.first, 'needs the rotations above');
    await refusedWith(refresh(s.as, s.client, s.first.refresh_token, s.DPoP), 'invalid_grant');
    await refusedWith(refresh(s.as, s.client, s.tokens.refresh_token, s.DPoP), 'invalid_grant');
  });
});

it('server nonces (RFC 9449 §8): isDPoPNonceError, one retry with the cached nonce, then tokens', async () => {
  const as = await discover();
  const client = { client_id: env.server.clients.nonce.clientId, token_endpoint_auth_method: 'none' };
  const keyPair = await oauth.generateKeyPair('ES256');
  const DPoP = oauth.DPoP(client, keyPair);
  const recorder = recordingFetch();
  const options = { [oauth.customFetch]: recorder.fetch };

  const { result, nonceRetries } = await signIn(as, client, DPoP, options);
  assert.equal(nonceRetries, 1, 'the first exchange was refused with use_dpop_nonce');
  assert.equal(result.token_type.toLowerCase(), 'dpop');
  assert.deepEqual((await verifyAccessToken(env.server, result.access_token)).cnf, { jkt: await keyThumbprint(keyPair) });
  const [refused, retried] = recorder.exchanges;
  assert.equal(recorder.exchanges.length, 2);
  assert.equal(refused.status, 400);
  assert.equal(JSON.parse(refused.body).error, 'use_dpop_nonce');
  assert.equal(refused.proof.payload.nonce, undefined);
  assert.equal(retried.proof.payload.nonce, refused.headers.get('dpop-nonce'), 'the retry used the nonce');
  assert.equal(retried.status, 200);

  // The token response carried the current nonce: the refresh needs no retry.
  const refreshed = await refresh(as, client, result.refresh_token, DPoP, options);
  assert.equal(refreshed.nonceRetries, 0);
  assert.equal(recorder.exchanges.at(-1).proof.payload.nonce, retried.headers.get('dpop-nonce'));
  assert.notEqual(refreshed.result.refresh_token, result.refresh_token);

  // A handle that has seen no nonce yet (another process holding the same key, say) meets
  // use_dpop_nonce once and then succeeds.
  const fresh = await refresh(as, client, refreshed.result.refresh_token, oauth.DPoP(client, keyPair));
  assert.equal(fresh.nonceRetries, 1);
  assert.equal(fresh.result.token_type.toLowerCase(), 'dpop');
});
