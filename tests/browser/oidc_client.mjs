// A third-party relying party against Gatehouse's OpenID Connect provider:
// openid-client (npm) discovers the issuer, builds a code + PKCE (S256)
// authorization request with state and nonce, exchanges the code and
// validates the ID token, calls userinfo, refreshes (the refresh token
// rotates), runs the client credentials grant and, with
// GH_POST_LOGOUT_URI, signs out through the end_session_endpoint
// (RP-initiated logout with id_token_hint, post_logout_redirect_uri and
// state), then checks that the session and the session's tokens are gone.
// The user agent between
// the RP and the provider is plain fetch with a cookie jar kept here: it
// follows the redirects to the HTML sign-in form, posts it, and stops at
// the redirect_uri.
//
// Environment: GH_ISSUER, GH_CLIENT_ID, GH_CLIENT_SECRET, GH_REDIRECT_URI,
// GH_USER, GH_PASSWORD; optional GH_EXPECT_SUB, GH_EXPECT_EMAIL,
// GH_POST_LOGOUT_URI.
// Prints one JSON summary line; exits non-zero on any failure.

import * as client from 'openid-client';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// The user agent's cookies: name -> value, one origin only (loopback).
class Jar {
  constructor() { this.cookies = new Map(); }
  take(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

const UA = 'gatehouse-integration/1.0 (openid-client)';

async function send(jar, url, init = {}) {
  const headers = { 'User-Agent': UA, ...(init.headers || {}) };
  const cookie = jar.header();
  if (cookie) headers.Cookie = cookie;
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar.take(res);
  return res;
}

function unescapeHtml(s) {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

// Follows the authorization URL through the sign-in form until the
// provider redirects to redirectUri; returns that URL. The jar keeps the
// provider's session cookie for later requests.
async function userAgent(jar, authUrl, redirectUri, user, password, trace) {
  let url = authUrl;
  let res = await send(jar, url);
  let signedIn = false;
  for (let hop = 0; hop < 10; hop++) {
    if (res.status === 302 || res.status === 303) {
      const next = new URL(res.headers.get('location'), url).href;
      trace.push(`${res.status} -> ${new URL(next).pathname}`);
      if (next.startsWith(redirectUri)) return new URL(next);
      url = next;
      res = await send(jar, url);
      continue;
    }
    const body = await res.text();
    check(res.status === 200, `${url}: status ${res.status}: ${body.slice(0, 300)}`);
    check(!signedIn, `sign-in form shown again: ${body.slice(0, 300)}`);
    const form = body.match(/<form method="post" action="([^"]+)">/);
    const csrf = body.match(/name="csrf_token" value="([^"]+)"/);
    check(form && csrf, `no sign-in form at ${url}`);
    check(body.includes('name="password"'), 'sign-in form has no password field');
    const action = new URL(unescapeHtml(form[1]), url).href;
    trace.push(`200 form -> POST ${new URL(action).pathname}`);
    signedIn = true;
    url = action;
    res = await send(jar, action, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        username: user, password, csrf_token: unescapeHtml(csrf[1]),
      }).toString(),
    });
  }
  throw new Error(`no redirect to ${redirectUri}: ${trace.join(', ')}`);
}

async function main() {
  const issuer = new URL(env('GH_ISSUER'));
  const clientId = env('GH_CLIENT_ID');
  const secret = env('GH_CLIENT_SECRET');
  const redirectUri = env('GH_REDIRECT_URI');
  const insecure = { execute: [client.allowInsecureRequests] };
  const summary = { trace: [] };

  const config = await client.discovery(issuer, clientId,
    { redirect_uris: [redirectUri], response_types: ['code'] },
    client.ClientSecretBasic(secret), insecure);
  const meta = config.serverMetadata();
  check(meta.issuer === issuer.href.replace(/\/$/, ''), `issuer ${meta.issuer}`);
  check(meta.code_challenge_methods_supported.includes('S256'), 'S256');
  summary.issuer = meta.issuer;

  // Code + PKCE.
  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: 'openid profile email',
    code_challenge: challenge, code_challenge_method: 'S256', state, nonce,
  });
  check(authUrl.searchParams.get('code_challenge_method') === 'S256', 'S256 sent');
  const jar = new Jar();
  const back = await userAgent(jar, authUrl.href, redirectUri,
    env('GH_USER'), env('GH_PASSWORD'), summary.trace);
  check(back.searchParams.get('state') === state, 'state echoed');
  check(back.searchParams.has('code'), `code in ${back.search}`);

  const tokens = await client.authorizationCodeGrant(config, back, {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  check(claims && claims.sub, 'ID token sub');
  check(claims.aud === clientId || (Array.isArray(claims.aud) && claims.aud.includes(clientId)), 'aud');
  check(claims.nonce === nonce, 'nonce');
  if (process.env.GH_EXPECT_SUB) check(claims.sub === process.env.GH_EXPECT_SUB, `sub ${claims.sub}`);
  if (process.env.GH_EXPECT_EMAIL) check(claims.email === process.env.GH_EXPECT_EMAIL, `email ${claims.email}`);
  check(tokens.token_type.toLowerCase() === 'bearer', 'token_type');
  check(tokens.refresh_token, 'refresh token issued');
  summary.code = {
    sub: claims.sub, email: claims.email, amr: claims.amr,
    scope: tokens.scope, expires_in: tokens.expiresIn(),
  };

  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  check(info.sub === claims.sub, 'userinfo sub');
  check(info.email === claims.email, 'userinfo email');
  summary.userinfo = { sub: info.sub, email: info.email, name: info.name };

  // Refresh: a new access token and a rotated refresh token; the old one
  // is spent.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  check(refreshed.access_token && refreshed.access_token !== tokens.access_token, 'new access token');
  check(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token, 'refresh token rotated');
  const again = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
  check(again.sub === claims.sub, 'userinfo after refresh');
  let reuse = null;
  try {
    await client.refreshTokenGrant(config, tokens.refresh_token);
  } catch (e) {
    reuse = e.error || e.code || String(e);
  }
  check(reuse === 'invalid_grant', `reused refresh token refused (${reuse})`);
  summary.refresh = { rotated: true, reuse_refused: reuse };

  // Client credentials.
  const cc = await client.clientCredentialsGrant(config, { scope: 'api:read' });
  check(cc.access_token, 'client credentials access token');
  check(!cc.refresh_token && !cc.id_token, 'no refresh or ID token for client credentials');
  const ccPayload = JSON.parse(Buffer.from(cc.access_token.split('.')[1], 'base64url'));
  check(ccPayload.sub === clientId, `client credentials sub ${ccPayload.sub}`);
  summary.client_credentials = { sub: ccPayload.sub, scope: cc.scope, expires_in: cc.expires_in };

  // RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). A second
  // authorization with the same user agent is answered from the session
  // (no form), so its tokens are bound to the session that logout ends.
  const postLogout = process.env.GH_POST_LOGOUT_URI;
  if (postLogout) {
    const v2 = client.randomPKCECodeVerifier();
    const state2 = client.randomState();
    const url2 = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid email',
      code_challenge: await client.calculatePKCECodeChallenge(v2),
      code_challenge_method: 'S256', state: state2,
    });
    const trace2 = [];
    const back2 = await userAgent(jar, url2.href, redirectUri,
      env('GH_USER'), env('GH_PASSWORD'), trace2);
    check(!trace2.some((hop) => hop.includes('form')), `no second sign-in: ${trace2}`);
    const t2 = await client.authorizationCodeGrant(config, back2, {
      pkceCodeVerifier: v2, expectedState: state2, idTokenExpected: true,
    });
    check(t2.refresh_token, 'second refresh token');
    const me = `${issuer.href.replace(/\/$/, '')}/api/v1/me`;
    const meBefore = (await send(jar, me)).status;
    check(meBefore === 200, `/me before logout: ${meBefore}`);

    const logoutState = client.randomState();
    const endUrl = client.buildEndSessionUrl(config, {
      id_token_hint: t2.id_token, post_logout_redirect_uri: postLogout,
      state: logoutState,
    });
    check(endUrl.href.startsWith(meta.end_session_endpoint), `end session URL ${endUrl.href}`);
    const res = await send(jar, endUrl.href);
    check(res.status === 302 || res.status === 303, `logout status ${res.status}`);
    const landed = new URL(res.headers.get('location'), endUrl);
    check(landed.href.startsWith(postLogout), `logout went to ${landed.href}`);
    check(landed.searchParams.get('state') === logoutState, 'logout state echoed');

    const meAfter = (await send(jar, me)).status;
    check(meAfter === 401, `/me after logout: ${meAfter}`);
    let refreshAfter = null;
    try {
      await client.refreshTokenGrant(config, t2.refresh_token);
    } catch (e) {
      refreshAfter = e.error || e.code || String(e);
    }
    check(refreshAfter === 'invalid_grant', `refresh after logout refused (${refreshAfter})`);
    let userinfoAfter = null;
    try {
      await client.fetchUserInfo(config, t2.access_token, claims.sub);
    } catch (e) {
      userinfoAfter = e.status || (e.response && e.response.status) || e.code || String(e);
    }
    check(userinfoAfter !== null, 'userinfo after logout refused');
    summary.logout = {
      landed: landed.origin + landed.pathname, state_echoed: true,
      me_before: meBefore, me_after: meAfter,
      refresh_after: refreshAfter, userinfo_after: String(userinfoAfter),
    };
  }

  summary.ok = true;
  console.log(JSON.stringify(summary));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  if (e && e.cause) console.error('cause:', e.cause);
  if (e && e.response) console.error(`status ${e.response.status}`);
  process.exit(1);
});
