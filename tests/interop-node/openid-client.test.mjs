// DPoP (RFC 9449) with openid-client 6: its own key pairs (`randomDPoPKeyPair`) and proofs
// (`getDPoPHandle`), against Ostiary's token and userinfo endpoints and a resource server that
// checks with `ostiary token verify`. The same flow with ES256 and with EdDSA keys.

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as client from 'openid-client';

import {
  Browser, REDIRECT_URI, SCOPE, USERNAME, explainError, jwtParts, keyThumbprint, recordingFetch, tokenRequest,
  useServer, verifyAccessToken,
} from './harness.mjs';

const env = useServer({ resourceServer: true });

/** openid-client's configuration from discovery, for a public client (no authentication). */
function configure(registered, options = {}) {
  return client.discovery(new URL(env.server.issuer), registered.clientId, undefined, client.None(), {
    execute: [client.allowInsecureRequests], // the issuer is http://127.0.0.1:PORT
    ...options,
  });
}

/** The code flow with PKCE; the code is exchanged by the library with a proof of `DPoP`. */
async function signIn(config, registered, DPoP) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const expectedState = client.randomState();
  const expectedNonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: expectedState,
    nonce: expectedNonce,
  });
  const callback = await new Browser().authorize(url.href, registered.redirectUri, USERNAME, env.server.password);
  assert.ok(callback.searchParams.get('code'), `no code in ${callback}`);
  return client.authorizationCodeGrant(
    config, callback, { pkceCodeVerifier, expectedState, expectedNonce, idTokenExpected: true }, undefined, { DPoP },
  ).catch(explainError);
}

/** Asserts that `promise` is refused with the OAuth error `code` in the response body. */
async function refusedWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof client.ResponseBodyError, `a ResponseBodyError, got ${err}`);
    assert.equal(err.error, code);
    return true;
  });
}

it('discovery() reads the metadata, which advertises the DPoP proof algorithms', async () => {
  const config = await configure(env.server.clients.public);
  const metadata = config.serverMetadata();
  assert.equal(metadata.issuer, env.server.issuer);
  assert.equal(metadata.token_endpoint, `${env.server.issuer}/token`);
  assert.ok(metadata.supportsPKCE(), 'S256 is advertised');
  assert.ok(Array.isArray(metadata.dpop_signing_alg_values_supported));
  for (const alg of ['ES256', 'EdDSA', 'Ed25519']) assert.ok(metadata.dpop_signing_alg_values_supported.includes(alg), alg);
});

// openid-client (through oauth4webapi) signs Ed25519 proofs with `"alg": "Ed25519"`, the
// fully specified name of RFC 9864 (which deprecates the polymorphic "EdDSA").
for (const alg of ['ES256', 'EdDSA']) {
  describe(`openid-client DPoP with ${alg} keys`, () => {
    const s = {}; // what the steps below hand on: config, keys, handle, tokens

    before(async () => {
      s.config = await configure(env.server.clients.public);
      s.keyPair = await client.randomDPoPKeyPair(alg);
      s.jkt = await keyThumbprint(s.keyPair);
      s.DPoP = client.getDPoPHandle(s.config, s.keyPair);
      s.otherDPoP = client.getDPoPHandle(s.config, await client.randomDPoPKeyPair(alg));
    });

    it('exchanges the code with a proof: token_type DPoP, cnf.jkt is the key thumbprint', async () => {
      const tokens = await signIn(s.config, env.server.clients.public, s.DPoP);
      assert.equal(tokens.token_type.toLowerCase(), 'dpop');
      assert.ok(tokens.refresh_token, 'a refresh token (offline_access)');
      assert.equal(tokens.claims()?.sub, env.server.sub, 'the ID token names the user');
      const claims = await verifyAccessToken(env.server, tokens.access_token);
      assert.deepEqual(claims.cnf, { jkt: s.jkt });
      assert.equal(claims.sub, env.server.sub);
      s.first = tokens;
      s.tokens = tokens;
    });

    it('refreshes with the same handle: a new, still bound access token and a rotated refresh token', async () => {
      assert.ok(s.tokens, 'needs the code exchange above');
      const refreshed = await client.refreshTokenGrant(s.config, s.tokens.refresh_token, undefined, { DPoP: s.DPoP });
      assert.equal(refreshed.token_type.toLowerCase(), 'dpop');
      assert.notEqual(refreshed.refresh_token, s.tokens.refresh_token, 'the refresh token rotated');
      assert.notEqual(refreshed.access_token, s.tokens.access_token);
      assert.deepEqual((await verifyAccessToken(env.server, refreshed.access_token)).cnf, { jkt: s.jkt });
      s.tokens = refreshed;
    });

    it('refuses a copy of the refresh token without a proof or with another key; the owner goes on', async () => {
      assert.ok(s.tokens, 'needs the refresh above');
      const { clientId } = env.server.clients.public;
      const bare = await tokenRequest(env.server, {
        grant_type: 'refresh_token', refresh_token: s.tokens.refresh_token, client_id: clientId,
      });
      assert.equal(bare.status, 400);
      assert.equal(bare.body.error, 'invalid_grant');
      await refusedWith(
        client.refreshTokenGrant(s.config, s.tokens.refresh_token, undefined, { DPoP: s.otherDPoP }), 'invalid_grant',
      );
      // Neither ended the session: the key's holder still refreshes, with that same token.
      const owner = await client.refreshTokenGrant(s.config, s.tokens.refresh_token, undefined, { DPoP: s.DPoP });
      assert.notEqual(owner.refresh_token, s.tokens.refresh_token);
      assert.deepEqual((await verifyAccessToken(env.server, owner.access_token)).cnf, { jkt: s.jkt });
      s.tokens = owner;
    });

    it('fetchUserInfo with the handle returns the sub; the same token as Bearer is refused', async () => {
      assert.ok(s.tokens, 'needs the tokens above');
      const info = await client.fetchUserInfo(s.config, s.tokens.access_token, env.server.sub, { DPoP: s.DPoP });
      assert.equal(info.sub, env.server.sub);

      const asBearer = await fetch(env.server.metadata.userinfo_endpoint, {
        headers: { authorization: `Bearer ${s.tokens.access_token}` },
      });
      assert.equal(asBearer.status, 401);
      assert.match(asBearer.headers.get('www-authenticate') ?? '', /DPoP/i);
      // A proof by another key does not make the token usable either.
      await assert.rejects(
        client.fetchUserInfo(s.config, s.tokens.access_token, env.server.sub, { DPoP: s.otherDPoP }),
        (err) => err instanceof client.WWWAuthenticateChallengeError && err.response.status === 401,
      );
    });

    it('fetchProtectedResource with the handle passes `ostiary token verify` at a resource server', async () => {
      assert.ok(s.tokens, 'needs the tokens above');
      const seen = env.rs.requests.length;
      const get = await client.fetchProtectedResource(
        s.config, s.tokens.access_token, env.rs.url('/api/orders?page=2'), 'GET', undefined, undefined, { DPoP: s.DPoP },
      );
      assert.equal(get.status, 200);
      assert.equal((await get.json()).sub, env.server.sub);
      const post = await client.fetchProtectedResource(
        s.config, s.tokens.access_token, env.rs.url('/api/orders'), 'POST', JSON.stringify({ item: 1 }),
        new Headers({ 'content-type': 'application/json' }), { DPoP: s.DPoP },
      );
      assert.equal(post.status, 200);
      assert.deepEqual(await post.json(), { sub: env.server.sub, method: 'POST', body: '{"item":1}' });

      const [first, second] = env.rs.requests.slice(seen);
      assert.equal(first.scheme, 'DPoP');
      const proof = jwtParts(first.proof);
      assert.equal(proof.header.typ, 'dpop+jwt');
      assert.equal(proof.payload.htm, 'GET');
      assert.equal(proof.payload.htu, env.rs.url('/api/orders').href, 'htu without the query');
      assert.ok(proof.payload.ath, 'the proof is bound to the access token (ath)');
      assert.equal(jwtParts(second.proof).payload.htm, 'POST');

      // Another key's proof, and the token as a Bearer token, are both refused.
      for (const [DPoP, reason] of [[s.otherDPoP, 'dpop_key_mismatch'], [undefined, 'dpop_bound']]) {
        await assert.rejects(
          client.fetchProtectedResource(s.config, s.tokens.access_token, env.rs.url('/api/orders'), 'GET', undefined, undefined, { DPoP }),
          (err) => err instanceof client.WWWAuthenticateChallengeError && err.response.status === 401,
        );
        assert.equal(env.rs.requests.at(-1).verdict.reason, reason);
      }
      assert.equal(env.rs.requests.at(-1).scheme, 'Bearer');
    });

    it('the first, rotated-out refresh token is reuse: refused, and it ends the family', async () => {
      assert.ok(s.first && s.tokens !== s.first, 'needs the rotations above');
      // Two generations old, presented by the key's holder itself: that is a copy in use.
      await refusedWith(client.refreshTokenGrant(s.config, s.first.refresh_token, undefined, { DPoP: s.DPoP }), 'invalid_grant');
      await refusedWith(client.refreshTokenGrant(s.config, s.tokens.refresh_token, undefined, { DPoP: s.DPoP }), 'invalid_grant');
    });
  });
}

it('server nonces (RFC 9449 §8): openid-client retries use_dpop_nonce by itself and ends with tokens', async () => {
  const registered = env.server.clients.nonce;
  const recorder = recordingFetch();
  const config = await configure(registered, { [client.customFetch]: recorder.fetch });
  const keyPair = await client.randomDPoPKeyPair('ES256');
  const DPoP = client.getDPoPHandle(config, keyPair);

  const tokens = await signIn(config, registered, DPoP);
  assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  assert.deepEqual((await verifyAccessToken(env.server, tokens.access_token)).cnf, { jkt: await keyThumbprint(keyPair) });

  const exchanges = recorder.exchanges.filter((x) => x.url === env.server.metadata.token_endpoint);
  assert.equal(exchanges.length, 2, 'one refused attempt, one retry');
  const [refused, retried] = exchanges;
  assert.equal(refused.status, 400);
  assert.equal(JSON.parse(refused.body).error, 'use_dpop_nonce');
  assert.equal(refused.proof.payload.nonce, undefined, 'the first proof had no nonce');
  const nonce = refused.headers.get('dpop-nonce');
  assert.ok(nonce, 'the refusal carries a DPoP-Nonce header');
  assert.equal(retried.proof.payload.nonce, nonce);
  assert.equal(retried.status, 200);

  // Each answer carries the current nonce, so the refresh succeeds on its first request.
  const before = recorder.exchanges.length;
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  const refresh = recorder.exchanges.slice(before);
  assert.equal(refresh.length, 1);
  assert.equal(refresh[0].proof.payload.nonce, retried.headers.get('dpop-nonce'));

  // A bearer refresh (no proof) of this client is refused: it requires DPoP.
  const bare = await tokenRequest(env.server, {
    grant_type: 'refresh_token', refresh_token: refreshed.refresh_token, client_id: registered.clientId,
  });
  assert.equal(bare.status, 400);
  assert.equal(bare.body.error, 'invalid_dpop_proof');
});
