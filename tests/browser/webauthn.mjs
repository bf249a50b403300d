// webauthn.mjs: drives Debian's headless Chromium (never a downloaded
// browser) through playwright-core against a running gatehouse, with
// Chromium's virtual authenticators (CDP WebAuthn domain) standing in for
// a platform passkey and a USB security key. Called by
// tests/integration/test_webauthn_browser.py, which checks the results.
//
// Input (environment): GH_BASE (http://localhost:PORT), GH_ORG, GH_USER1
// (gets a passkey), GH_USER2 (gets a security key), GH_PASSWORD.
// Output: one JSON object on stdout with each step's {status, body}.
import { chromium } from 'playwright-core';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const base = env('GH_BASE');
const org = env('GH_ORG');
const user1 = env('GH_USER1');
const user2 = env('GH_USER2');
const password = env('GH_PASSWORD');

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

async function openPage(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto(`${base}/o/${org}/passkeys`);
  await page.waitForFunction(() => window.gatehouseWebauthn !== undefined,
    null, { timeout: 10000 });
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  return { context, page, cdp, problems };
}

const call = (page, fn, ...args) => page.evaluate(
  ([f, a]) => window.gatehouseWebauthn[f](...a), [fn, args]);

async function signOut(p) {
  await p.context.clearCookies();
  await call(p.page, 'forgetCsrf');
}

const out = {};
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true, args: FLAGS,
  timeout: 30000,
});
try {
  // A passkey: a user-verifying platform authenticator with resident keys.
  const a = await openPage(browser);
  const { authenticatorId: pk } = await a.cdp.send(
    'WebAuthn.addVirtualAuthenticator', { options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true,
      automaticPresenceSimulation: true } });
  out.passkey_password = await call(a.page, 'signinPassword', user1, password);
  out.passkey_register = await call(a.page, 'register', 'Laptop passkey', 'passkey');
  await signOut(a);
  out.passkey_signin = await call(a.page, 'passkeySignin');
  await signOut(a);
  out.passkey_signin2 = await call(a.page, 'passkeySignin');
  await signOut(a);

  // A cloned authenticator: the same key with an older counter.
  const { credentials } = await a.cdp.send('WebAuthn.getCredentials',
    { authenticatorId: pk });
  const cred = credentials[0];
  out.passkey_sign_count = cred.signCount;
  await a.cdp.send('WebAuthn.removeCredential',
    { authenticatorId: pk, credentialId: cred.credentialId });
  await a.cdp.send('WebAuthn.addCredential', { authenticatorId: pk,
    credential: { ...cred, signCount: 0 } });
  out.passkey_regression = await call(a.page, 'passkeySignin');
  out.passkey_page_problems = a.problems;
  await a.context.close();

  // A security key: USB, no user verification, no resident key; the
  // second factor after the password.
  const b = await openPage(browser);
  await b.cdp.send('WebAuthn.addVirtualAuthenticator', { options: {
    protocol: 'ctap2', transport: 'usb', hasResidentKey: false,
    hasUserVerification: false, automaticPresenceSimulation: true } });
  out.key_password = await call(b.page, 'signinPassword', user2, password);
  out.key_register = await call(b.page, 'register', 'YubiKey', 'security_key');
  await signOut(b);
  out.key_password2 = await call(b.page, 'signinPassword', user2, password);
  const token = out.key_password2.body && out.key_password2.body.mfa_token;
  out.key_second_factor = await call(b.page, 'secondFactor', token);
  // The owner lists, renames and removes it.
  const creds = '/me/webauthn/credentials';
  out.key_list = await call(b.page, 'request', 'GET', creds);
  const id = out.key_list.body && out.key_list.body.credentials[0].id;
  out.key_rename = await call(b.page, 'request', 'PATCH', `${creds}/${id}`,
    { name: 'Blue key' });
  out.key_list2 = await call(b.page, 'request', 'GET', creds);
  out.key_delete = await call(b.page, 'request', 'DELETE', `${creds}/${id}`);
  out.key_list3 = await call(b.page, 'request', 'GET', creds);
  out.key_page_problems = b.problems;
  await b.context.close();
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
