/*
 * webauthn_page.c: the passkeys page (/o/{org}/passkeys) and its script
 * (/static/webauthn.js), the browser side of webauthn.c's ceremonies:
 * registering a passkey or security key, the WebAuthn second factor and
 * passkey sign-in, through navigator.credentials and the JSON API. Both
 * are static and same-origin, so the strict CSP (script-src 'self') holds.
 */
#include "api/api_int.h"

static const char page[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    "<title>Passkeys and security keys</title>"
    "<link rel=\"stylesheet\" href=\"/static/gatehouse.css\">"
    "<script type=\"module\" src=\"/static/webauthn.js\"></script>"
    "</head><body><main><h1>Passkeys and security keys</h1>"
    "<p id=\"wa-status\" role=\"status\">Loading&hellip;</p>"
    "</main></body></html>\n";

static void
h_page(void *app, struct gh_http_req *req)
{
	struct api_ctx ctx;

	if (!ctx_open(app, req, &ctx))
		return;
	gh_http_respond(req, 200, "text/html; charset=utf-8", page,
	    sizeof page - 1);
	ctx_close(&ctx);
}

/* The browser side: base64url <-> ArrayBuffer around
 * navigator.credentials, then the API. Exposed as window.gatehouseWebauthn
 * for the page's own use and for tests. */
static const char script[] =
    "// webauthn.js: the browser half of Gatehouse passkeys and security\n"
    "// keys.\n"
    "const org = location.pathname.split('/')[2];\n"
    "const api = (p) => `/o/${encodeURIComponent(org)}/api/v1${p}`;\n"
    "let csrf = null;\n"
    "const enc = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))\n"
    "  .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');\n"
    "const dec = (s) => {\n"
    "  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/'));\n"
    "  return Uint8Array.from(b, (c) => c.charCodeAt(0));\n"
    "};\n"
    "export async function request(method, path, body) {\n"
    "  const headers = {};\n"
    "  if (csrf) headers['X-CSRF-Token'] = csrf;\n"
    "  const init = { method, headers, credentials: 'same-origin' };\n"
    "  if (method !== 'GET' && method !== 'DELETE') {\n"
    "    headers['Content-Type'] = 'application/json';\n"
    "    init.body = JSON.stringify(body || {});\n"
    "  }\n"
    "  const r = await fetch(api(path), init);\n"
    "  let j = null;\n"
    "  try { j = await r.json(); } catch (e) { j = null; }\n"
    "  if (j && j.csrf_token) csrf = j.csrf_token;\n"
    "  return { status: r.status, body: j };\n"
    "}\n"
    "const post = (path, body) => request('POST', path, body);\n"
    "function assertionJSON(c, extra) {\n"
    "  return Object.assign({ id: c.id, rawId: enc(c.rawId), type: c.type,\n"
    "    response: { clientDataJSON: enc(c.response.clientDataJSON),\n"
    "      authenticatorData: enc(c.response.authenticatorData),\n"
    "      signature: enc(c.response.signature),\n"
    "      userHandle: c.response.userHandle ?\n"
    "        enc(c.response.userHandle) : null } }, extra || {});\n"
    "}\n"
    "function requestOptions(o) {\n"
    "  return { challenge: dec(o.challenge), rpId: o.rpId,\n"
    "    timeout: o.timeout,\n"
    "    userVerification: o.userVerification,\n"
    "    allowCredentials: o.allowCredentials.map((d) =>\n"
    "      ({ type: d.type, id: dec(d.id) })) };\n"
    "}\n"
    "export async function signinPassword(username, password) {\n"
    "  return post('/session', { username, password });\n"
    "}\n"
    "export async function register(name, authenticator) {\n"
    "  const o = await post('/me/webauthn/register/options',\n"
    "    { authenticator: authenticator || 'passkey' });\n"
    "  if (o.status !== 200) return o;\n"
    "  const p = o.body;\n"
    "  const publicKey = { rp: p.rp, challenge: dec(p.challenge),\n"
    "    user: { id: dec(p.user.id), name: p.user.name,\n"
    "      displayName: p.user.displayName },\n"
    "    pubKeyCredParams: p.pubKeyCredParams, timeout: p.timeout,\n"
    "    authenticatorSelection: p.authenticatorSelection,\n"
    "    attestation: p.attestation,\n"
    "    excludeCredentials: p.excludeCredentials.map((d) =>\n"
    "      ({ type: d.type, id: dec(d.id) })) };\n"
    "  const c = await navigator.credentials.create({ publicKey });\n"
    "  return post('/me/webauthn/register', { id: c.id,\n"
    "    rawId: enc(c.rawId),\n"
    "    type: c.type, name, response: {\n"
    "      clientDataJSON: enc(c.response.clientDataJSON),\n"
    "      attestationObject: enc(c.response.attestationObject) } });\n"
    "}\n"
    "export async function passkeySignin() {\n"
    "  const o = await post('/session/passkey/options');\n"
    "  if (o.status !== 200) return o;\n"
    "  const c = await navigator.credentials.get(\n"
    "    { publicKey: requestOptions(o.body) });\n"
    "  return post('/session/passkey', assertionJSON(c));\n"
    "}\n"
    "export async function secondFactor(mfaToken) {\n"
    "  const o = await post('/session/mfa/webauthn/options',\n"
    "    { mfa_token: mfaToken });\n"
    "  if (o.status !== 200) return o;\n"
    "  const c = await navigator.credentials.get(\n"
    "    { publicKey: requestOptions(o.body) });\n"
    "  return post('/session/mfa/webauthn',\n"
    "    assertionJSON(c, { mfa_token: mfaToken }));\n"
    "}\n"
    "export function forgetCsrf() { csrf = null; }\n"
    "window.gatehouseWebauthn = { signinPassword, register, passkeySignin,\n"
    "  secondFactor, forgetCsrf, request };\n"
    "const st = document.getElementById('wa-status');\n"
    "if (st) st.textContent = window.PublicKeyCredential ?\n"
    "  'Ready.' : 'This browser does not support passkeys.';\n"
    "// The HTML pages (src/api/web_mfa.c): buttons, no inline code.\n"
    "const waError = document.getElementById('wa-error');\n"
    "function showError(msg) {\n"
    "  if (!waError) return;\n"
    "  waError.textContent = msg;\n"
    "  waError.hidden = false;\n"
    "}\n"
    "async function guarded(fn) {\n"
    "  try { return await fn(); }\n"
    "  catch (e) { return { status: 0, body: { message:\n"
    "    `The browser did not complete the request (${e.name}).` } }; }\n"
    "}\n"
    "// Where a finished sign-in goes on: its return_to, else the account.\n"
    "const next = () => location.assign(`/o/${org}/login/continue`);\n"
    "const second = document.getElementById('wa-second');\n"
    "if (second) second.addEventListener('click', async () => {\n"
    "  const r = await guarded(() => secondFactor(undefined));\n"
    "  if (r.status === 200) next();\n"
    "  else showError((r.body && r.body.message) ||\n"
    "    'The security key was refused.');\n"
    "});\n"
    "const sec = document.getElementById('security');\n"
    "if (sec && sec.dataset.csrf) csrf = sec.dataset.csrf;\n"
    "const reg = document.getElementById('wa-register');\n"
    "if (reg) reg.addEventListener('click', async () => {\n"
    "  const name = document.getElementById('wa-name').value.trim() ||\n"
    "    'Security key';\n"
    "  const r = await guarded(() => register(name, 'passkey'));\n"
    "  if (r.status === 201) location.reload();\n"
    "  else showError((r.body && r.body.message) ||\n"
    "    'The key was not added.');\n"
    "});\n"
    "// Enrolment forced at sign-in: registers with the pending sign-in's\n"
    "// gh_mfa cookie (no session, so no CSRF token), which signs in.\n"
    "const enrol = document.getElementById('wa-enrol');\n"
    "if (enrol) enrol.addEventListener('click', async () => {\n"
    "  enrol.disabled = true;\n"
    "  const r = await guarded(() => register('Security key',\n"
    "    'security_key'));\n"
    "  enrol.disabled = false;\n"
    "  if (r.status === 201) next();\n"
    "  else showError((r.body && r.body.message) ||\n"
    "    'The key was not added.');\n"
    "});\n";

static void
h_script(void *app, struct gh_http_req *req)
{
	(void)app;
	gh_http_respond(req, 200, "text/javascript; charset=utf-8", script,
	    sizeof script - 1);
}

gh_err
routes_webauthn_page(struct gh_http_router *r)
{
	static const struct gh_http_route_def routes[] = {
		{ "GET", "/o/{org}/passkeys", h_page },
		{ "GET", "/static/webauthn.js", h_script },
	};

	return gh_http_routes(r, routes, sizeof routes / sizeof *routes);
}
