// panva oidc-provider as the comparison server of scripts/bench-refresh.sh: one process on
// 127.0.0.1, the default in-memory adapter, refresh tokens rotated on every use, JWT access
// tokens (ES256) for one resource server, no openid scope (access token only).
//
// At startup it mints FAMILIES grants, each with one refresh token (as if FAMILIES sign-ins had
// gone through the code flow), writes the tokens to TOKENS_FILE (one a line), then listens.
//
//   PORT=18192 FAMILIES=256 TOKENS_FILE=/tmp/tokens node server.js
//
// DPoP mode (RFC 9449; scripts/bench-refresh.sh --dpop): DPOP=1 and DPOP_JKT=<the JWK SHA-256
// thumbprint of the benchmark's client key>. features.dPoP is enabled (oidc-provider 9 enables
// it by default anyway; here it is explicit) and every refresh token is minted bound to that
// key (`jkt`), as the code exchange of a public client with a proof would bind it
// (applyRefreshTokenBindings): each refresh must then carry a proof by that key (otherwise
// "failed jkt verification"), rotated tokens keep the binding, and access tokens get cnf.jkt.
// Minted unbound, the families would accept proofs but stay unbound (oidc-provider binds a
// refresh token at the code exchange only, never at a refresh), and the key would never be
// checked against the token.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 18192);
const families = Number(process.env.FAMILIES || 256);
const tokensFile = process.env.TOKENS_FILE;
if (!tokensFile) {
  console.error('server.js: TOKENS_FILE is required');
  process.exit(2);
}
const dpop = process.env.DPOP === '1';
const dpopJkt = process.env.DPOP_JKT;
if (dpop && !/^[A-Za-z0-9_-]{43}$/.test(dpopJkt ?? '')) {
  console.error('server.js: DPOP=1 needs DPOP_JKT, the thumbprint of the client key');
  process.exit(2);
}

const issuer = `http://127.0.0.1:${port}`;
const resource = 'http://api.bench.localhost';
const clientId = 'load';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/cb'],
    id_token_signed_response_alg: 'ES256',
  }],
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  // Every account exists; only `sub` is ever asked for.
  findAccount: (_ctx, accountId) => ({ accountId, claims: () => ({ sub: accountId }) }),
  rotateRefreshToken: true,
  scopes: ['offline_access', 'api:read'],
  ttl: {
    // As Ostiary's defaults: 5-minute access tokens; refresh tokens and grants for 14 days.
    AccessToken: 300,
    RefreshToken: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
    Interaction: 3600,
    IdToken: 3600,
    AuthorizationCode: 60,
  },
  features: {
    devInteractions: { enabled: false },
    ...(dpop ? { dPoP: { enabled: true } } : {}),
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== resource) throw new Provider.errors.InvalidTarget();
        return {
          scope: 'api:read',
          audience: resource,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});

// Fail loudly instead of logging and carrying on.
provider.on('server_error', (_ctx, err) => console.error('server_error', err));
// A refused grant is a failure of the benchmark: say why (the first few).
let refused = 0;
provider.on('grant.error', (_ctx, err) => {
  refused += 1;
  if (refused <= 5) console.error(`grant.error ${err.message}: ${err.error_detail ?? ''}`);
});

const client = await provider.Client.find(clientId);
if (!client) throw new Error('client "load" was not registered');

const tokens = [];
const now = Math.floor(Date.now() / 1000);
for (let i = 0; i < families; i += 1) {
  const accountId = 'load';
  const grant = new provider.Grant({ accountId, clientId });
  grant.addOIDCScope('offline_access');
  grant.addResourceScope(resource, 'api:read');
  const grantId = await grant.save();
  const refreshToken = new provider.RefreshToken({
    accountId,
    client,
    grantId,
    gty: 'authorization_code',
    scope: 'offline_access api:read',
    resource,
    authTime: now,
    expiresWithSession: false,
    ...(dpop ? { jkt: dpopJkt } : {}),
  });
  tokens.push(await refreshToken.save());
}
writeFileSync(tokensFile, `${tokens.join('\n')}\n`);

createServer(provider.callback()).listen(port, '127.0.0.1', () => {
  console.error(`oidc-provider ${issuer}: ${families} refresh tokens${dpop ? ` bound to DPoP key ${dpopJkt}` : ''} in ${tokensFile}`);
});
