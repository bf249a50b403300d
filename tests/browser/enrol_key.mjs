// enrol_key.mjs: enrolment forced at the form sign-in, finished with a
// security key instead of an authenticator app, in Debian's headless
// Chromium through playwright-core with a virtual USB security key (CDP
// WebAuthn domain), by keyboard only (typing, Tab, Enter). The sign-in
// starts at GH_START (a URL that leads to the sign-in form with a
// return_to) and must end at GH_RETURN. Called by
// tests/integration/test_enrol_pages.py, which checks the results.
//
// Input (environment): GH_BASE (http://localhost:PORT), GH_ORG, GH_USER,
// GH_PASSWORD, GH_START (a path), GH_RETURN (a path).
// Output: one JSON object on the last line of stdout.
import { chromium } from 'playwright-core';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const base = env('GH_BASE');
const org = env('GH_ORG');
const user = env('GH_USER');
const password = env('GH_PASSWORD');
const start = env('GH_START');
const ret = env('GH_RETURN');

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

const out = { problems: [], failed: [] };

async function settled(page) {
  await page.waitForFunction(() => document.activeElement &&
    document.activeElement !== document.body, null, { timeout: 10000 });
}

async function tabTo(page, selector) {
  for (let i = 0; i < 40; i++) {
    if (await page.evaluate((s) => document.activeElement &&
        document.activeElement.matches(s), selector)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`Tab never reached ${selector}`);
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
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text()))
      out.problems.push(m.text());
  });
  page.on('pageerror', (e) => out.problems.push(String(e)));
  // Answers of 400 and above, but for the browser's own favicon request.
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (r.status() >= 400 && u.pathname !== '/favicon.ico')
      out.failed.push(`${r.status()} ${u.pathname}`);
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send(
    'WebAuthn.addVirtualAuthenticator', { options: {
      protocol: 'ctap2', transport: 'usb', hasResidentKey: false,
      hasUserVerification: false, automaticPresenceSimulation: true } });

  await page.goto(`${base}${start}`);
  await page.waitForSelector('#username');
  out.login_url = new URL(page.url()).pathname;
  await settled(page);
  await page.keyboard.type(user);             // username has autofocus
  await page.keyboard.press('Tab');
  await page.keyboard.type(password);
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);

  await page.waitForSelector('#wa-enrol');
  out.enrol_title = await page.title();
  out.totp_part = await page.evaluate(() => document.querySelector(
    '#totp-secret, #code, form[action$="/login/enrol"]') !== null);
  out.enrol_width = await page.evaluate(
    () => document.documentElement.scrollWidth);
  await settled(page);
  await tabTo(page, '#wa-enrol');
  out.enrol_focus_visible = await page.evaluate(() =>
    getComputedStyle(document.activeElement).outlineStyle !== 'none');
  await Promise.all([
    page.waitForURL((u) => u.pathname === ret, { timeout: 20000 }),
    page.keyboard.press('Enter')]);
  out.final_url = new URL(page.url()).pathname;
  await page.waitForSelector('#security');
  out.security_heading = (await page.textContent('#security')).trim();
  out.key_names = await page.locator('.cred-name').allTextContents();
  out.wa_error = await page.evaluate(() => {
    const e = document.getElementById('wa-error');
    return e && !e.hidden ? e.textContent : null;
  });
  const { credentials } = await cdp.send('WebAuthn.getCredentials',
    { authenticatorId });
  out.authenticator_credentials = credentials.length;
  out.cookies = (await context.cookies()).map((c) => c.name);
} catch (e) {
  console.error(`so far: ${JSON.stringify(out)}`);
  throw e;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(0);
