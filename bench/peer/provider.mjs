// bench/peer/provider.mjs: the oidc-provider (npm) peer of `make bench`
// (issue 7), configured like the Gatehouse scenarios it is compared with:
// one confidential client (client_secret_basic) allowed the
// client_credentials grant, access tokens issued as JWTs signed with ES256
// (through resource indicators, the only way oidc-provider issues JWT
// access tokens), token introspection on, and the default in-memory
// adapter. One Node.js process.
//
//   node provider.mjs PORT CLIENT_ID CLIENT_SECRET
//
// Listens on 127.0.0.1:PORT; the issuer is http://127.0.0.1:PORT. Prints
// "ready" on stdout once listening.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret] = process.argv.slice(2);
if (!port || !clientId || !clientSecret) {
  console.error('usage: node provider.mjs PORT CLIENT_ID CLIENT_SECRET');
  process.exit(2);
}

// ES256 signs the access tokens; an RS256 key is there for ID tokens,
// which oidc-provider requires by default and this benchmark never issues.
function jwk(type, opts, kid, alg) {
  const { privateKey } = generateKeyPairSync(type, opts);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}
const keys = [
  jwk('ec', { namedCurve: 'P-256' }, 'bench-es256', 'ES256'),
  jwk('rsa', { modulusLength: 2048 }, 'bench-rs256', 'RS256'),
];

// oidc-provider refuses to introspect JWT access tokens
// (unsupported_token_type), so a second resource server gets opaque ones:
// the introspection figure is for those, requested with
// resource=urn:gatehouse-bench:opaque.
const RESOURCE = 'urn:gatehouse-bench:api';
const OPAQUE = 'urn:gatehouse-bench:opaque';
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => (indicator === OPAQUE
        ? { scope: 'api', audience: OPAQUE, accessTokenTTL: 3600, accessTokenFormat: 'opaque' }
        : {
          scope: 'api',
          audience: RESOURCE,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
    },
  },
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

createServer(provider.callback()).listen(Number(port), '127.0.0.1', () => {
  console.log('ready');
});
