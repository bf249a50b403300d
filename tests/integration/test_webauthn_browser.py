"""WebAuthn against the real binary (docs/api.md, Passkeys and security
keys): in Debian's headless Chromium with its virtual authenticators
(tests/browser/webauthn.mjs, playwright-core), a passkey registered and
used for usernameless sign-in, a counter regression refused, a USB
security key as the second factor after the password, and the owner's
list/rename/remove; then, with crafted requests, challenges that are
unknown, reused, expired or for another ceremony, and a wrong origin.

The browser reaches the server as http://localhost:PORT (an IP address
is not a valid RP ID), so the RP ID is "localhost"."""

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, SLOW, USER_PASSWORD, expect_error

BROWSER_DIR = REPO / "tests" / "browser"
SCRIPT = BROWSER_DIR / "webauthn.mjs"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def run_browser(server, user1, user2):
    node = shutil.which("node")
    assert node, "node is missing: scripts/install-deps.sh test"
    assert Path("/usr/bin/chromium").exists(), \
        "chromium is missing: scripts/install-deps.sh test"
    assert (BROWSER_DIR / "node_modules" / "playwright-core").is_dir(), \
        "playwright-core is missing: npm ci --prefix tests/browser"
    env = dict(os.environ, GH_BASE=f"http://localhost:{server.port}",
               GH_ORG=server.org, GH_USER1=user1, GH_USER2=user2,
               GH_PASSWORD=USER_PASSWORD)
    r = subprocess.run([node, str(SCRIPT)], cwd=BROWSER_DIR, env=env,
                       capture_output=True, text=True, timeout=90 * SLOW)
    assert r.returncode == 0, f"webauthn.mjs failed:\n{r.stderr[-3000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def signins(server, user_id):
    return [(r["result"], r["reason"]) for r in server.query(
        "SELECT result, reason FROM signin_events WHERE user_id = ? "
        "ORDER BY seq", (user_id,))]


def audit_actions(server):
    return [r["action"] for r in server.query(
        "SELECT action FROM audit_events ORDER BY seq")]


def assertion_body(cred_id, challenge, origin, typ="webauthn.get"):
    cd = json.dumps({"type": typ, "challenge": challenge,
                     "origin": origin}).encode()
    return {"id": cred_id, "rawId": cred_id, "type": "public-key",
            "response": {"clientDataJSON": b64u(cd),
                         "authenticatorData": b64u(bytes(37)),
                         "signature": b64u(bytes(70)),
                         "userHandle": b64u(bytes(32))}}


def test_passkey_and_security_key_in_chromium(server, admin):
    alice = server.create_user(admin, "alice", password=USER_PASSWORD)["id"]
    bob = server.create_user(admin, "bob", password=USER_PASSWORD)["id"]

    # The page keeps CSP strict: its script is a same-origin module.
    r = admin.get(server.url(f"/o/{server.org}/passkeys"))
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert '<script type="module" src="/static/webauthn.js">' in r.text
    assert "<script>" not in r.text

    out = run_browser(server, "alice", "bob")
    for k in ("passkey_page_problems", "key_page_problems"):
        assert not [p for p in out[k] if "Content Security Policy" in p], out[k]

    # Passkey: registered, then usernameless sign-in (twice).
    assert out["passkey_password"]["status"] == 200
    reg = out["passkey_register"]
    assert reg["status"] == 201, reg
    assert reg["body"]["name"] == "Laptop passkey"
    assert reg["body"]["user_verified"] is True
    for k in ("passkey_signin", "passkey_signin2"):
        assert out[k]["status"] == 200, out[k]
        assert out[k]["body"]["user"]["username"] == "alice"
        assert out[k]["body"]["csrf_token"]

    # The same key with an older counter: a possibly cloned authenticator.
    assert out["passkey_regression"]["status"] == 401
    assert out["passkey_regression"]["body"]["reason"] == \
        "counter_regression"
    row = server.query("SELECT sign_count, regressions, last_used_at FROM "
                       "webauthn_credentials WHERE user_id = ?", (alice,))
    assert len(row) == 1 and row[0]["regressions"] == 1
    assert row[0]["sign_count"] == out["passkey_sign_count"]

    # Security key: the password, then the key as the second factor.
    assert out["key_password"]["status"] == 200
    assert out["key_register"]["status"] == 201, out["key_register"]
    assert out["key_register"]["body"]["user_verified"] is False
    p2 = out["key_password2"]["body"]
    assert p2["mfa_required"] is True and p2["mfa_token"]
    assert "webauthn" in p2["methods"], p2
    assert out["key_second_factor"]["status"] == 200, out["key_second_factor"]
    assert out["key_second_factor"]["body"]["user"]["username"] == "bob"

    # Listed, renamed, removed by the owner; then no second factor is due.
    assert [c["name"] for c in out["key_list"]["body"]["credentials"]] == \
        ["YubiKey"]
    assert out["key_rename"]["status"] == 204
    assert [c["name"] for c in out["key_list2"]["body"]["credentials"]] == \
        ["Blue key"]
    assert out["key_delete"]["status"] == 204
    assert out["key_list3"]["body"]["credentials"] == []
    r = server.signin("bob", USER_PASSWORD)
    assert r.status_code == 200 and "csrf_token" in r.json(), r.text
    # alice has a passkey: her password alone no longer signs her in.
    r = server.signin("alice", USER_PASSWORD)
    assert r.status_code == 200 and r.json()["mfa_required"] is True
    # Her passkey sign-in made a session with a second factor, which
    # could approve this one.
    assert r.json()["methods"] == ["webauthn", "approval"], r.json()

    # Every event recorded with its method.
    assert ("success", "passkey") in signins(server, alice)
    assert ("failure", "passkey_counter_regression") in signins(server, alice)
    assert ("success", "mfa_webauthn") in signins(server, bob)
    acts = audit_actions(server)
    for a in ("mfa.webauthn.add", "webauthn.passkey.use",
              "webauthn.counter_regression", "webauthn.passkey.failure",
              "mfa.webauthn.use", "mfa.webauthn.rename",
              "mfa.webauthn.remove"):
        assert a in acts, (a, acts)
    ev = server.query("SELECT changes FROM audit_events WHERE action = "
                      "'webauthn.counter_regression'")
    assert "possible_cloned_authenticator" in ev[0]["changes"]

    # A crafted assertion for alice's credential from another origin is
    # refused; the challenge it used is gone.
    s = server.new_session()
    ch = s.post(server.api("/session/passkey/options"), json={}).json()
    assert ch["userVerification"] == "required"
    body = assertion_body(reg["body"]["credential_id"], ch["challenge"],
                          "http://evil.example")
    r = s.post(server.api("/session/passkey"), json=body)
    assert r.status_code == 401 and r.json()["reason"] == "origin_mismatch"
    r = s.post(server.api("/session/passkey"), json=body)
    assert r.status_code == 401 and r.json()["reason"] == "challenge_invalid"

    # An admin reset of her factors removes the passkey too (a user who
    # lost a key must get back in), so her password signs her in again.
    r = admin.delete(server.api(f"/users/{alice}/mfa"))
    assert r.status_code in (200, 204), r.text
    assert server.query("SELECT count(*) AS n FROM webauthn_credentials "
                        "WHERE user_id = ?", (alice,))[0]["n"] == 0
    r = server.signin("alice", USER_PASSWORD)
    assert r.status_code == 200 and "csrf_token" in r.json(), r.text

def test_webauthn_challenges_refused(server, admin):
    s = server.new_session()
    origin = server.base
    api = server.api

    # A challenge never issued.
    body = assertion_body(b64u(b"x" * 32), b64u(os.urandom(32)), origin)
    r = s.post(api("/session/passkey"), json=body)
    assert r.status_code == 401 and r.json()["reason"] == "challenge_invalid"

    # Expired (two minutes): aged in the database.
    ch = s.post(api("/session/passkey/options"), json={}).json()["challenge"]
    assert len(unb64u(ch)) == 32
    server.query("UPDATE webauthn_challenges SET expires_at = 1")
    r = s.post(api("/session/passkey"), json=assertion_body(
        b64u(b"x" * 32), ch, origin))
    assert r.status_code == 401 and r.json()["reason"] == "challenge_invalid"

    # Registration options for the admin: the creation options.
    o = admin.post(api("/me/webauthn/register/options"),
                   json={"authenticator": "security_key"})
    assert o.status_code == 200, o.text
    o = o.json()
    assert o["rp"]["id"] == "127.0.0.1" and o["attestation"] == "none"
    assert [p["alg"] for p in o["pubKeyCredParams"]] == [-7, -8, -257]
    assert o["authenticatorSelection"]["userVerification"] == "discouraged"
    assert len(unb64u(o["user"]["id"])) == 32
    # The handle is stable per user.
    o2 = admin.post(api("/me/webauthn/register/options")).json()
    assert o2["user"]["id"] == o["user"]["id"]
    assert o2["authenticatorSelection"]["residentKey"] == "required"

    # A registration challenge is no good for sign-in.
    r = s.post(api("/session/passkey"), json=assertion_body(
        b64u(b"x" * 32), o["challenge"], origin))
    assert r.status_code == 401 and r.json()["reason"] == "challenge_invalid"

    # A registration with the wrong clientData type, then the same again.
    cd = json.dumps({"type": "webauthn.get", "challenge": o2["challenge"],
                     "origin": origin}).encode()
    reg = {"id": "a", "rawId": b64u(b"a" * 16), "type": "public-key",
           "name": "k", "response": {"clientDataJSON": b64u(cd),
                                     "attestationObject": b64u(b"\xa0")}}
    r = admin.post(api("/me/webauthn/register"), json=reg)
    assert r.status_code == 400 and r.json()["reason"] == "wrong_type", r.text
    r = admin.post(api("/me/webauthn/register"), json=reg)
    assert r.status_code == 400
    assert r.json()["reason"] == "challenge_invalid"

    # Malformed bodies and foreign ids.
    r = admin.post(api("/me/webauthn/register"), json={"rawId": "!"})
    expect_error(r, 400, "invalid_request")
    r = admin.post(api("/me/webauthn/register"), json={"bogus": 1})
    expect_error(r, 400, "invalid_request")
    r = admin.patch(api("/me/webauthn/credentials/" + "0" * 32),
                    json={"name": "x"})
    assert r.status_code == 404
    r = admin.patch(api("/me/webauthn/credentials/" + "0" * 32),
                    json={"name": ""})
    expect_error(r, 400, "invalid_request")
    r = admin.delete(api("/me/webauthn/credentials/nope"))
    assert r.status_code == 404
    assert admin.get(api("/me/webauthn/credentials")).json() == \
        {"credentials": []}
    # Not signed in: no registration.
    r = s.post(api("/me/webauthn/register/options"), json={})
    assert r.status_code == 401

    # The second-factor step needs a pending sign-in.
    r = s.post(api("/session/mfa/webauthn/options"), json={})
    expect_error(r, 401, "mfa_token_invalid")
    r = s.post(api("/session/mfa/webauthn"), json=body)
    expect_error(r, 401, "mfa_token_invalid")
    assert "mfa.webauthn.failure" in audit_actions(server)
