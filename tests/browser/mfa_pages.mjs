// mfa_pages.mjs: the MFA HTML pages in Debian's headless Chromium through
// playwright-core, at a 360x740 viewport and with the keyboard only
// (typing, Tab, Enter): the form sign-in of a user whose organisation
// requires two-step verification, TOTP enrolment on the page, the
// recovery codes, the account page, then the security page. Called by
// tests/integration/test_mfa_pages.py, which checks the results.
//
// Input (environment): GH_BASE (http://localhost:PORT), GH_ORG, GH_USER,
// GH_PASSWORD. Protocol: prints "SECRET <base32>" once the enrolment page
// shows the key, then reads the current TOTP code from stdin.
// Output: one JSON object on the last line of stdout.
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const base = env('GH_BASE');
const org = env('GH_ORG');
const user = env('GH_USER');
const password = env('GH_PASSWORD');

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const out = { widths: {}, focus_visible: {}, csp_problems: [] };

// The page's scroll width (more than 360 means horizontal scrolling) and
// whether the focused element shows an outline.
async function check(page, name, focused = true) {
  out.widths[name] = await page.evaluate(
    () => document.documentElement.scrollWidth);
  if (!focused) return;
  out.focus_visible[name] = await page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return false;
    return getComputedStyle(el).outlineStyle !== 'none';
  });
}

// Waits until the page's autofocus has taken effect, so that typing and
// Tab start from the first field.
async function settled(page) {
  await page.waitForFunction(() => document.activeElement &&
    document.activeElement !== document.body, null, { timeout: 10000 });
}

// Presses Tab until the focused element matches selector.
async function tabTo(page, selector) {
  for (let i = 0; i < 40; i++) {
    if (await page.evaluate((s) => document.activeElement &&
        document.activeElement.matches(s), selector)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`Tab never reached ${selector}`);
}

// Signs in through the form by keyboard; resolves after the navigation.
async function formSignin(page) {
  await page.goto(`${base}/o/${org}/login`);
  await settled(page);
  await page.keyboard.type(user);
  await page.keyboard.press('Tab');
  await page.keyboard.type(password);
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
}

// GH_MODE=key: a passkey (Chromium's virtual platform authenticator) added
// with the security page's button, then used with the second-step page's
// button; all by keyboard.
async function securityKey(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', { options: {
    protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
    hasUserVerification: true, isUserVerified: true,
    automaticPresenceSimulation: true } });
  await formSignin(page);
  await page.goto(`${base}/o/${org}/account/security`);
  await settled(page);
  await check(page, 'security');
  await tabTo(page, '#wa-name');
  await page.keyboard.press('Control+A');
  await page.keyboard.type('Desk key');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.waitForSelector('.cred-name, #wa-error:not([hidden])');
  out.register_error = await page.textContent('#wa-error');
  out.key_names = await page.locator('.cred-name').allTextContents();
  await check(page, 'security_with_key', false);

  await context.clearCookies();
  await formSignin(page);
  await page.waitForSelector('#wa-second');
  await settled(page);
  await check(page, 'second_step');              // the button has focus
  out.second_focus = await page.evaluate(() => document.activeElement.id);
  await Promise.all([page.waitForURL(`**/o/${org}/account`),
    page.keyboard.press('Enter')]);
  await page.waitForSelector('#username');
  out.account_user = (await page.textContent('#username')).trim();
}

// The default mode: enrolment forced at the form sign-in.
async function enrolment(page) {
  await page.goto(`${base}/o/${org}/login`);
  await settled(page);
  await check(page, 'login');
  await page.keyboard.type(user);             // username has autofocus
  await page.keyboard.press('Tab');
  await page.keyboard.type(password);
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);

  await page.waitForSelector('#totp-secret');
  await settled(page);
  await check(page, 'enrol');
  const secret = (await page.textContent('#totp-secret')).trim();
  process.stdout.write(`SECRET ${secret}\n`);
  const code = (await lines.next()).value.trim();
  await tabTo(page, '#code');                 // autofocus puts it there
  await page.keyboard.type(code);
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);

  await page.waitForSelector('#recovery-codes');
  await settled(page);
  await check(page, 'codes');
  out.codes = await page.locator('#recovery-codes li').count();
  await tabTo(page, '#continue');
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);

  await page.waitForSelector('#username');
  await check(page, 'account', false);  // nothing focused yet
  out.account_user = (await page.textContent('#username')).trim();
  await tabTo(page, 'a[href$="/account/security"]');
  await check(page, 'account_link');
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);

  await page.waitForSelector('#totp-state');
  await tabTo(page, '#remove-code');
  await check(page, 'security');
  out.totp_state = (await page.textContent('#totp-state')).trim();
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true, args: FLAGS,
  timeout: 30000,
});
try {
  const context = await browser.newContext(
    { viewport: { width: 360, height: 740 } });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/.test(m.text()))
      out.csp_problems.push(m.text());
  });
  page.on('pageerror', (e) => out.csp_problems.push(String(e)));

  if (process.env.GH_MODE === 'key') await securityKey(context, page);
  else await enrolment(page);
} catch (e) {
  console.error(`so far: ${JSON.stringify(out)}`);
  throw e;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(0);
