// approval.mjs: drives Debian's headless Chromium over the DevTools
// protocol (no dependencies; node --experimental-websocket) through the
// approval of a sign-in from another device, as a person would with the
// keyboard, at 360 px width:
//   device A: the account page of a session made with a second factor
//             (its cookie comes in GH_COOKIE) long-polls for requests;
//   device B: signs in with the password form, chooses "Approve from
//             another device" and reads the number;
//   device A: types the number and presses Enter;
//   device B: lands on its account page, signed in.
// Prints one JSON line with what it saw; screenshots go to GH_SHOTS.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync }
  from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BASE = process.env.GH_BASE;
const ORG = process.env.GH_ORG;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function launch() {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cdp-'));
  const proc = spawn('/usr/bin/chromium', ['--headless=new', '--no-sandbox',
    '--disable-gpu', '--no-first-run', '--remote-debugging-port=0',
    `--user-data-dir=${dir}`, 'about:blank'], { stdio: 'ignore' });
  const file = join(dir, 'DevToolsActivePort');
  for (let i = 0; i < 200 && !existsSync(file); i++) await sleep(100);
  const [port, path] = readFileSync(file, 'utf8').trim().split('\n');
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  await new Promise((res, rej) => { ws.onopen = res; ws.onerror = rej; });
  let id = 0;
  const waiting = new Map();
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.id && waiting.has(m.id)) {
      const { res, rej } = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.error) rej(new Error(JSON.stringify(m.error)));
      else res(m.result);
    }
  };
  const send = (method, params = {}, sessionId) => new Promise((res, rej) => {
    const mid = ++id;
    waiting.set(mid, { res, rej });
    ws.send(JSON.stringify({ id: mid, method, params, sessionId }));
  });
  const close = () => {
    ws.close();
    proc.kill('SIGKILL');
    try { rmSync(dir, { recursive: true, force: true }); } catch (e) {}
  };
  return { send, close };
}

// A page in its own browser context (its own cookies).
async function page(b) {
  const { browserContextId } = await b.send('Target.createBrowserContext');
  const { targetId } = await b.send('Target.createTarget',
    { url: 'about:blank', browserContextId });
  const { sessionId } = await b.send('Target.attachToTarget',
    { targetId, flatten: true });
  const s = (m, p) => b.send(m, p, sessionId);
  await s('Page.enable');
  await s('Runtime.enable');
  await s('Emulation.setDeviceMetricsOverride',
    { width: 360, height: 740, deviceScaleFactor: 1, mobile: true });
  const evaluate = async (expr) => {
    const r = await s('Runtime.evaluate',
      { expression: expr, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error(JSON.stringify(r.exceptionDetails));
    return r.result.value;
  };
  const until = async (expr, ms = 15000) => {
    for (let t = 0; t < ms; t += 100) {
      const v = await evaluate(expr).catch(() => null);
      if (v) return v;
      await sleep(100);
    }
    throw new Error('timed out waiting for ' + expr);
  };
  const key = async (k, code, text) => {
    await s('Input.dispatchKeyEvent', { type: 'keyDown', key: k, code,
      text, windowsVirtualKeyCode: k === 'Enter' ? 13 : 0 });
    await s('Input.dispatchKeyEvent', { type: 'keyUp', key: k, code,
      windowsVirtualKeyCode: k === 'Enter' ? 13 : 0 });
  };
  const type = (text) => s('Input.insertText', { text });
  const go = async (url) => {
    await s('Page.navigate', { url });
    await until('document.readyState === "complete"');
  };
  const shot = async (name) => {
    if (!process.env.GH_SHOTS) return;
    const r = await s('Page.captureScreenshot', { format: 'png' });
    writeFileSync(join(process.env.GH_SHOTS, name),
      Buffer.from(r.data, 'base64'));
  };
  return { s, evaluate, until, key, type, go, shot };
}

const out = {};
const b = await launch();
try {
  const a = await page(b);
  await a.s('Network.enable');
  await a.s('Network.setCookie', { name: 'gh_session',
    value: process.env.GH_COOKIE, url: BASE, httpOnly: true });
  await a.go(`${BASE}/o/${ORG}/account`);
  await a.until('document.querySelector("#approvals h2")');
  out.a_status = await a.until(
    'document.querySelector("#approvals [role=status]").textContent');

  const n = await page(b);
  await n.go(`${BASE}/o/${ORG}/login`);
  // The keyboard: the username field has focus; Tab to the password.
  await n.type(process.env.GH_USER);
  await n.key('Tab', 'Tab');
  await n.type(process.env.GH_PASSWORD);
  await n.key('Enter', 'Enter', '\r');
  await n.until('document.querySelector("#approval-request button")');
  out.b_title = await n.evaluate('document.title');
  await n.evaluate('document.querySelector("#approval-request button")' +
    '.focus()');
  await n.key('Enter', 'Enter', '\r');
  out.number = await n.until(
    'document.querySelector("#approval-number")?.textContent');
  out.qr_loaded = await n.until('(() => { const i = document.querySelector(' +
    '"#approval-request img"); return i && i.complete && ' +
    'i.naturalWidth > 0; })()');
  await n.shot('new-device.png');

  // Device A: the long poll shows the request; its number field has focus.
  await a.until('document.querySelector("#approvals input")', 30000);
  out.a_text = await a.evaluate(
    'document.querySelector("#approvals li p").textContent');
  await a.shot('approver.png');
  out.a_focused = await a.evaluate(
    'document.activeElement === document.querySelector("#approvals input")');
  await a.type(out.number);
  await a.key('Enter', 'Enter', '\r');
  out.a_result = await a.until(
    'document.querySelector("#approvals li [role=status]").textContent');

  // Device B: signed in.
  out.b_url = await n.until('location.pathname.endsWith("/account") && ' +
    'location.pathname', 20000);
  out.b_user = await n.until(
    'document.querySelector("#username")?.textContent');
  await n.shot('new-device-signed-in.png');
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  b.close();
}
console.log(JSON.stringify(out));
