"""Multi-factor sign-in against the real binary (docs/api.md, Multi-factor
authentication): TOTP enrolment and sign-in with codes computed by
oathtool, replay and wrong codes, recovery codes, the org policy, attempt
limits and lockout, admin reset, the HTML second step, and the audit and
sign-in log entries.

A TOTP code is accepted one step (30 s) either side of now, and never for
a step at or before the last one used; tests therefore use the current
step for enrolment and the next step for the sign-in that follows."""

import base64
import html
import re
import subprocess
import time

import requests

from conftest import (ADMIN_PASSWORD, USER_PASSWORD, cookie_attrs,
                      expect_error, set_cookies)


def totp(secret, steps=0):
    """The code oathtool computes for secret, steps * 30 s from now."""
    t = int(time.time()) + 30 * steps
    out = subprocess.run(["oathtool", "--totp", "-b", "-N", f"@{t}", secret],
                         check=True, capture_output=True, text=True)
    code = out.stdout.strip()
    assert re.fullmatch(r"\d{6}", code), code
    return code


def wrong_code(secret):
    """A six-digit code that is not valid anywhere in the window."""
    near = {totp(secret, s) for s in (-2, -1, 0, 1, 2)}
    for c in ("000000", "111111", "222222", "333333"):
        if c not in near:
            return c
    raise AssertionError("unlucky")


def new_user(server, admin, name):
    u = server.create_user(admin, name, password=USER_PASSWORD)
    return u["id"]


def enrol(server, sess):
    """Enrols TOTP for the session's user; returns (secret, recovery)."""
    r = sess.post(server.api("/me/mfa/totp"))
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = sess.post(server.api("/me/mfa/totp/confirm"),
                  json={"code": totp(secret)})
    assert r.status_code == 200, r.text
    return secret, r.json()["recovery_codes"]


def password_step(server, username, password=USER_PASSWORD):
    s = server.new_session()
    r = server.signin(username, password, session=s)
    assert r.status_code == 200, r.text
    return s, r


def mfa_step(server, s, method, code, token=None):
    body = {"method": method, "code": code}
    if token is not None:
        body["mfa_token"] = token
    return s.post(server.api("/session/mfa"), json=body, timeout=30)


def signins(server, user_id):
    return server.query("SELECT result, reason FROM signin_events WHERE "
                        "user_id = ? ORDER BY seq", (user_id,))


def audit_actions(server, user_id):
    return [r["action"] for r in server.query(
        "SELECT action FROM audit_events WHERE target_id = ? ORDER BY seq",
        (user_id,))]


def cookie(resp, name):
    for h in set_cookies(resp):
        n, v, attrs = cookie_attrs(h)
        if n == name:
            return v, attrs
    return None, None


def test_enrol_confirm_then_sign_in_with_password_and_totp(server, admin):
    uid = new_user(server, admin, "bob")
    bob = server.login("bob", USER_PASSWORD)
    r = bob.get(server.api("/me/mfa"))
    assert r.status_code == 200, r.text
    assert r.json()["totp"]["enabled"] is False

    r = bob.post(server.api("/me/mfa/totp"))
    assert r.status_code == 200, r.text
    body = r.json()
    secret = body["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    uri = body["otpauth_uri"]
    assert uri.startswith("otpauth://totp/"), uri
    assert ":bob?secret=" + secret in uri, uri
    assert "&issuer=" in uri and "algorithm=SHA1" in uri, uri
    assert "digits=6" in uri and "period=30" in uri, uri
    assert body["qr_svg"].startswith("<svg ") and "<path" in body["qr_svg"]

    # Not confirmed yet: sign-in needs no second factor.
    assert password_step(server, "bob")[1].json().get("mfa_required") is None
    r = bob.post(server.api("/me/mfa/totp/confirm"),
                 json={"code": wrong_code(secret)})
    expect_error(r, 400, "invalid_mfa_code")
    r = bob.post(server.api("/me/mfa/totp/confirm"), json={"code": "12a456"})
    expect_error(r, 400, "invalid_mfa_code")
    r = bob.post(server.api("/me/mfa/totp/confirm"),
                 json={"code": totp(secret)})
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}", c) for c in codes)
    r = bob.get(server.api("/me/mfa"))
    assert r.json()["totp"]["enabled"] is True, r.text
    assert r.json()["recovery_codes"]["remaining"] == 10
    expect_error(bob.post(server.api("/me/mfa/totp")), 409,
                 "mfa_already_enrolled")

    # The seed is stored encrypted, the recovery codes hashed.
    row = server.query("SELECT hex(seed_ct) AS ct, key_version, confirmed "
                       "FROM mfa_totp WHERE user_id = ?", (uid,))[0]
    seed = base64.b32decode(secret)
    ct = bytes.fromhex(row["ct"])
    assert seed not in ct and len(ct) == 20 + 33, row
    assert row["confirmed"] == 1 and row["key_version"] >= 1
    stored = str(server.query("SELECT * FROM mfa_recovery_codes"))
    assert not any(c.replace("-", "") in stored for c in codes)

    # Password alone no longer makes a session.
    s, r = password_step(server, "bob")
    body = r.json()
    assert body["mfa_required"] is True, body
    assert body["methods"] == ["totp", "recovery"], body
    assert "session" not in body and "csrf_token" not in body
    assert cookie(r, "gh_session")[0] is None
    value, attrs = cookie(r, "gh_mfa")
    assert value == body["mfa_token"] and len(value) >= 43
    assert "httponly" in attrs and attrs.get("samesite", "").lower() == \
        "strict" and attrs.get("path") == "/o/acme/", attrs
    rows = server.query("SELECT * FROM mfa_pending")
    assert rows and all(value not in str(dict(x).values()) for x in rows)
    expect_error(s.get(server.api("/me")), 401, "unauthenticated")

    code = totp(secret, 1)
    r = mfa_step(server, s, "totp", code)
    assert r.status_code == 200, r.text
    assert {"user", "session", "csrf_token"} <= set(r.json())
    assert cookie(r, "gh_session")[0]
    assert s.get(server.api("/me")).status_code == 200

    # The same code again is a replay; a wrong code and a malformed one
    # are refused.
    s2, r = password_step(server, "bob")
    expect_error(mfa_step(server, s2, "totp", code), 401, "invalid_mfa_code")
    expect_error(mfa_step(server, s2, "totp", wrong_code(secret)), 401,
                 "invalid_mfa_code")
    expect_error(mfa_step(server, s2, "totp", "12345"), 400,
                 "invalid_request")
    expect_error(mfa_step(server, s2, "sms", "123456"), 400,
                 "invalid_request")
    # The token also works as a body member, without the cookie (the
    # pending sign-in above has had four of its five attempts).
    _, r = password_step(server, "bob")
    s3 = server.new_session()
    expect_error(mfa_step(server, s3, "totp", code,
                          token=r.json()["mfa_token"]), 401,
                 "invalid_mfa_code")
    expect_error(mfa_step(server, s3, "totp", code), 401, "mfa_token_invalid")

    reasons = [(x["result"], x["reason"]) for x in signins(server, uid)]
    for want in [("failure", "mfa_required"), ("success", "mfa_totp"),
                 ("failure", "mfa_totp_replayed"),
                 ("failure", "mfa_totp_invalid"),
                 ("failure", "mfa_code_malformed")]:
        assert want in reasons, reasons
    actions = audit_actions(server, uid)
    for want in ("mfa.totp.enrol", "mfa.recovery_codes.generate",
                 "mfa.totp.use", "mfa.failure"):
        assert want in actions, actions
    ev = server.query("SELECT changes FROM audit_events WHERE action = "
                      "'mfa.totp.use'")[0]
    assert '"totp"' in ev["changes"]


def test_recovery_codes_work_once_and_regenerate_replaces_them(server, admin):
    uid = new_user(server, admin, "carol")
    carol = server.login("carol", USER_PASSWORD)
    secret, codes = enrol(server, carol)

    s, _ = password_step(server, "carol")
    r = mfa_step(server, s, "recovery", codes[0].lower())
    assert r.status_code == 200, r.text
    s, _ = password_step(server, "carol")
    expect_error(mfa_step(server, s, "recovery", codes[0]), 401,
                 "invalid_mfa_code")
    r = mfa_step(server, s, "recovery", codes[1].replace("-", ""))
    assert r.status_code == 200, r.text
    assert carol.get(server.api("/me/mfa")).json()["recovery_codes"][
        "remaining"] == 8

    r = carol.post(server.api("/me/mfa/recovery-codes"))
    assert r.status_code == 200, r.text
    fresh = r.json()["recovery_codes"]
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    s, _ = password_step(server, "carol")
    expect_error(mfa_step(server, s, "recovery", codes[2]), 401,
                 "invalid_mfa_code")
    assert mfa_step(server, s, "recovery", fresh[0]).status_code == 200

    reasons = [x["reason"] for x in signins(server, uid)]
    assert "mfa_recovery" in reasons and "mfa_recovery_invalid" in reasons
    actions = audit_actions(server, uid)
    assert actions.count("mfa.recovery_code.use") == 3, actions
    assert actions.count("mfa.recovery_codes.generate") == 2, actions


def test_five_wrong_codes_kill_a_pending_sign_in_and_ten_lock(server, admin):
    uid = new_user(server, admin, "dave")
    dave = server.login("dave", USER_PASSWORD)
    secret, _ = enrol(server, dave)
    bad = wrong_code(secret)

    s, _ = password_step(server, "dave")
    for i in range(4):
        expect_error(mfa_step(server, s, "totp", bad), 401,
                     "invalid_mfa_code")
    expect_error(mfa_step(server, s, "totp", bad), 401, "mfa_token_invalid")
    # Dead: even the right code is refused now.
    expect_error(mfa_step(server, s, "totp", totp(secret, 1)), 401,
                 "mfa_token_invalid")

    s, _ = password_step(server, "dave")
    for i in range(4):
        expect_error(mfa_step(server, s, "totp", bad), 401,
                     "invalid_mfa_code")
    r = mfa_step(server, s, "totp", bad)
    expect_error(r, 429, "mfa_locked")
    assert 800 <= int(r.headers["Retry-After"]) <= 900, r.headers
    s, _ = password_step(server, "dave")
    r = mfa_step(server, s, "totp", totp(secret, 1))
    expect_error(r, 429, "mfa_locked")
    assert int(r.headers["Retry-After"]) > 0
    assert ("failure", "mfa_locked") in [
        (x["result"], x["reason"]) for x in signins(server, uid)]
    assert "mfa.lock" in audit_actions(server, uid)

    # An admin resets the user's factors: the lock and TOTP are gone.
    r = admin.delete(server.api(f"/users/{uid}/mfa"))
    assert r.status_code == 204, r.text
    assert "mfa.reset" in audit_actions(server, uid)
    ev = server.query("SELECT actor_id FROM audit_events WHERE action = "
                      "'mfa.reset'")[0]
    assert ev["actor_id"] == admin.user["id"]
    s, r = password_step(server, "dave")
    assert "session" in r.json() and "mfa_required" not in r.json(), r.text
    assert server.query("SELECT COUNT(*) AS n FROM mfa_recovery_codes WHERE "
                        "user_id = ?", (uid,))[0]["n"] == 0
    expect_error(admin.delete(server.api("/users/" + "0" * 32 + "/mfa")),
                 404, "not_found")


def test_members_may_not_reset_or_change_the_policy(server, admin):
    uid = new_user(server, admin, "erin")
    erin = server.login("erin", USER_PASSWORD)
    expect_error(erin.delete(server.api(f"/users/{admin.user['id']}/mfa")),
                 403, "permission_denied")
    expect_error(erin.get(server.api("/mfa-policy")), 403, "permission_denied")
    expect_error(erin.patch(server.api("/mfa-policy"),
                            json={"required": True}), 403, "permission_denied")
    assert uid


def test_removing_totp_needs_a_current_code_or_recovery_code(server, admin):
    uid = new_user(server, admin, "frank")
    frank = server.login("frank", USER_PASSWORD)
    secret, codes = enrol(server, frank)
    expect_error(frank.delete(server.api("/me/mfa/totp"),
                              json={"code": wrong_code(secret)}), 403,
                 "invalid_mfa_code")
    expect_error(frank.delete(server.api("/me/mfa/totp"), json={}), 400,
                 "invalid_request")
    r = frank.delete(server.api("/me/mfa/totp"),
                     json={"recovery_code": codes[3]})
    assert r.status_code == 204, r.text
    body = frank.get(server.api("/me/mfa")).json()
    assert body["totp"]["enabled"] is False
    assert body["recovery_codes"]["remaining"] == 0
    _, r = password_step(server, "frank")
    assert "session" in r.json(), r.text
    actions = audit_actions(server, uid)
    assert "mfa.totp.remove" in actions and \
        "mfa.recovery_code.use" in actions, actions


def test_org_policy_requires_enrolment_with_grace_then_without(server, admin):
    uid = new_user(server, admin, "gina")
    r = admin.get(server.api("/mfa-policy"))
    assert r.status_code == 200, r.text
    assert r.json()["required"] is False
    expect_error(admin.patch(server.api("/mfa-policy"),
                             json={"grace_days": -1}), 400, "invalid_request")
    expect_error(admin.patch(server.api("/mfa-policy"),
                             json={"methods": ["sms"]}), 400,
                 "invalid_request")
    expect_error(admin.patch(server.api("/mfa-policy"),
                             json={"required": "yes"}), 400,
                 "invalid_request")
    r = admin.patch(server.api("/mfa-policy"),
                    json={"required": True, "grace_days": 7})
    assert r.status_code == 200, r.text
    assert r.json()["required"] is True and r.json()["required_since"]
    ev = server.query("SELECT changes FROM audit_events WHERE action = "
                      "'mfa_policy.update'")
    assert ev, "policy change not audited"

    # Within the grace window: a session, and a reminder.
    s, r = password_step(server, "gina")
    assert r.json().get("mfa_enrolment_required") is True, r.text
    assert "session" in r.json()

    # Grace over: only enrolment is possible.
    r = admin.patch(server.api("/mfa-policy"), json={"grace_days": 0})
    assert r.status_code == 200, r.text
    s, r = password_step(server, "gina")
    body = r.json()
    assert body["mfa_required"] is True and \
        body["mfa_enrolment_required"] is True, body
    assert "session" not in body and body["methods"] == []
    expect_error(s.get(server.api("/me")), 401, "unauthenticated")
    expect_error(mfa_step(server, s, "totp", "123456"), 403,
                 "mfa_enrolment_required")
    # The pending token lets the user enrol, and confirming signs in.
    r = s.post(server.api("/me/mfa/totp"))
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = s.post(server.api("/me/mfa/totp/confirm"),
               json={"code": totp(secret), "mfa_token": body["mfa_token"]})
    assert r.status_code == 200, r.text
    assert {"session", "csrf_token", "recovery_codes"} <= set(r.json())
    assert cookie(r, "gh_session")[0]
    assert s.get(server.api("/me")).status_code == 200
    assert ("success", "mfa_totp_enrolled") in [
        (x["result"], x["reason"]) for x in signins(server, uid)]

    # Someone with a verify token cannot use it to enrol.
    s, r = password_step(server, "gina")
    # The session that enrolment completed was made with a second factor,
    # so it may approve this sign-in too.
    assert r.json()["methods"] == ["totp", "recovery", "approval"]
    s.cookies.clear()
    expect_error(s.post(server.api("/me/mfa/totp"),
                        json={"mfa_token": r.json()["mfa_token"]}), 401,
                 "mfa_token_invalid")

    # The admin is subject to the policy too (no factor, grace over).
    s, r = password_step(server, "admin", ADMIN_PASSWORD)
    assert r.json().get("mfa_enrolment_required") is True


def test_form_sign_in_asks_for_the_code_on_a_second_page(server, admin):
    new_user(server, admin, "hank")
    hank = server.login("hank", USER_PASSWORD)
    secret, _ = enrol(server, hank)
    s = server.new_session()
    r = s.get(server.url("/o/acme/login"))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = s.post(server.url("/o/acme/login"), allow_redirects=False,
               data={"username": "hank", "password": USER_PASSWORD,
                     "csrf_token": csrf})
    assert r.status_code == 200, r.text[:500]
    assert 'name="code"' in r.text and "/o/acme/login/mfa" in r.text
    assert cookie(r, "gh_session")[0] is None and cookie(r, "gh_mfa")[0]
    csrf2 = html.unescape(re.search(r'name="csrf_token" value="([^"]+)"',
                                    r.text).group(1))
    r = s.post(server.url("/o/acme/login/mfa"), allow_redirects=False,
               data={"method": "totp", "code": wrong_code(secret),
                     "csrf_token": csrf2})
    assert r.status_code == 401 and "wrong" in r.text, r.text[:500]
    r = s.post(server.url("/o/acme/login/mfa"), allow_redirects=False,
               data={"method": "totp", "code": totp(secret, 1),
                     "csrf_token": csrf2})
    assert r.status_code == 303, r.text[:500]
    assert r.headers["Location"].endswith("/o/acme/account")
    r = s.get(server.url("/o/acme/account"), allow_redirects=False)
    assert r.status_code == 200 and "hank" in r.text
    r = s.post(server.url("/o/acme/login/mfa"), allow_redirects=False,
               data={"method": "totp", "code": "123456"})
    assert r.status_code == 403


def test_mfa_step_without_a_pending_sign_in_is_refused(server):
    s = server.new_session()
    expect_error(mfa_step(server, s, "totp", "123456"), 401,
                 "mfa_token_invalid")
    expect_error(mfa_step(server, s, "totp", "123456", token="A" * 43), 401,
                 "mfa_token_invalid")
    expect_error(requests.get(server.api("/me/mfa"), timeout=10), 401,
                 "unauthenticated")
