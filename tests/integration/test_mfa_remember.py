"""Remembered devices and the allowed-methods MFA policy against the real
binary (docs/api.md, Multi-factor authentication): "remember this device"
after a second factor, sign-in without a code from that browser only,
revocation by the user, by turning the option off and by an admin reset;
and methods: validation, WebAuthn refused for enrolment and at the second
step, TOTP refused, WebAuthn registration in the enrol-now state.

Each second factor after the first uses a recovery code: TOTP refuses a
step used already, and only a step either side of now is accepted."""

from conftest import USER_PASSWORD, cookie_attrs, expect_error, set_cookies
from test_mfa import (audit_actions, enrol, mfa_step, new_user,
                      password_step, signins, totp)


def device_cookie(resp):
    for h in set_cookies(resp):
        name, value, attrs = cookie_attrs(h)
        if name == "gh_device":
            return value, attrs
    return None, None


def remember(server, username, code, method="recovery"):
    """Password, then code with remember_device; returns the cookie."""
    s, r = password_step(server, username)
    assert r.json().get("mfa_required") is True, r.text
    r = s.post(server.api("/session/mfa"), json={
        "method": method, "code": code, "remember_device": True})
    assert r.status_code == 200, r.text
    assert r.json()["device_remembered"] is True, r.text
    value, attrs = device_cookie(r)
    assert value, r.headers
    return value, attrs


def signin_with(server, username, device):
    """A password sign-in from a browser holding the device cookie (None:
    none); returns the session (with X-CSRF-Token when signed in) and the
    answer."""
    s = server.new_session()
    if device is not None:
        s.cookies.set("gh_device", device)
    r = server.signin(username, USER_PASSWORD, session=s)
    assert r.status_code == 200, r.text
    if "csrf_token" in r.json():
        s.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return s, r.json()


def set_policy(admin, server, **body):
    r = admin.patch(server.api("/mfa-policy"), json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_remembered_device_skips_the_code_until_revoked(server, admin):
    pol = set_policy(admin, server, remember_device_days=30)
    assert pol["remember_device_days"] == 30
    assert pol["methods"] == ["totp", "webauthn", "recovery", "approval"]
    uid = new_user(server, admin, "carol")
    new_user(server, admin, "dave")
    _, codes = enrol(server, server.login("carol", USER_PASSWORD))
    _, dcodes = enrol(server, server.login("dave", USER_PASSWORD))

    # Without remember_device, no cookie.
    s, r = password_step(server, "carol")
    r = mfa_step(server, s, "recovery", codes[0])
    assert r.status_code == 200, r.text
    assert device_cookie(r)[0] is None and "device_remembered" not in r.json()

    token, attrs = remember(server, "carol", codes[1])
    assert attrs.get("path") == f"/o/{server.org}/", attrs
    assert "httponly" in attrs and attrs.get("samesite") == "Lax", attrs
    assert attrs.get("max-age") == str(30 * 86400), attrs
    # Only the digest is stored.
    rows = server.query("SELECT token_hash, revoked_at FROM mfa_devices "
                        "WHERE user_id = ?", (uid,))
    assert len(rows) == 1 and rows[0]["token_hash"] != token
    assert rows[0]["revoked_at"] is None

    # With the cookie: a session without a code, logged as such.
    s, body = signin_with(server, "carol", token)
    assert "session" in body and body["mfa_remembered_device"] is True, body
    assert "mfa_required" not in body
    assert s.get(server.api("/me")).status_code == 200
    assert ("success", "mfa_remembered_device") in [
        (x["result"], x["reason"]) for x in signins(server, uid)]
    # Without it: the code is asked.
    _, body = signin_with(server, "carol", None)
    assert body.get("mfa_required") is True and "session" not in body
    # Another user's cookie does not help, nor a forged one.
    _, body = signin_with(server, "dave", token)
    assert body.get("mfa_required") is True and "session" not in body
    _, body = signin_with(server, "carol", "A" * 43)
    assert body.get("mfa_required") is True

    # The user lists the device (no token) and revokes it.
    carol = signin_with(server, "carol", token)[0]
    r = carol.get(server.api("/me/mfa/devices"))
    assert r.status_code == 200, r.text
    devs = r.json()["devices"]
    assert len(devs) == 1 and token not in r.text, r.text
    assert {"id", "created_at", "expires_at", "last_used_at", "ip",
            "user_agent"} <= set(devs[0]), devs
    assert devs[0]["last_used_at"] is not None
    expect_error(carol.delete(server.api("/me/mfa/devices/" + "0" * 32),
                              headers=csrf(carol)), 404, "not_found")
    r = carol.delete(server.api("/me/mfa/devices/" + devs[0]["id"]),
                     headers=csrf(carol))
    assert r.status_code == 204, r.text
    _, body = signin_with(server, "carol", token)
    assert body.get("mfa_required") is True, body

    # Remember again, then DELETE /me/mfa/devices revokes them all.
    token, _ = remember(server, "carol", codes[2])
    assert signin_with(server, "carol", token)[1].get(
        "mfa_remembered_device") is True
    r = carol.delete(server.api("/me/mfa/devices"), headers=csrf(carol))
    assert r.status_code == 204, r.text
    assert signin_with(server, "carol", token)[1].get("mfa_required") is True
    assert carol.get(server.api("/me/mfa/devices")).json()["devices"] == []

    # Turning the option off: the code is asked, and stays asked when it
    # is turned on again.
    token, _ = remember(server, "carol", codes[3])
    set_policy(admin, server, remember_device_days=0)
    assert signin_with(server, "carol", token)[1].get("mfa_required") is True
    set_policy(admin, server, remember_device_days=30)
    assert signin_with(server, "carol", token)[1].get("mfa_required") is True

    # With the option off, remember_device sets no cookie.
    set_policy(admin, server, remember_device_days=0)
    s, r = password_step(server, "carol")
    r = s.post(server.api("/session/mfa"), json={
        "method": "recovery", "code": codes[4], "remember_device": True})
    assert r.status_code == 200 and r.json()["device_remembered"] is False
    assert device_cookie(r)[0] is None
    expect_error(s.post(server.api("/session/mfa"), json={
        "method": "recovery", "code": codes[5], "remember_device": "yes"}),
        400, "invalid_request")
    set_policy(admin, server, remember_device_days=30)

    # An admin MFA reset revokes the user's devices.
    token, _ = remember(server, "carol", codes[6])
    r = admin.delete(server.api(f"/users/{uid}/mfa"), headers=csrf(admin))
    assert r.status_code == 204, r.text
    rows = server.query("SELECT revoked_at FROM mfa_devices WHERE "
                        "user_id = ?", (uid,))
    assert rows and all(x["revoked_at"] is not None for x in rows), rows
    actions = audit_actions(server, uid)
    assert "mfa.device.remember" in actions, actions
    assert actions.count("mfa.device.revoke") >= 3, actions


def test_password_change_and_disable_revoke_devices(server, admin):
    set_policy(admin, server, remember_device_days=7)
    uid = new_user(server, admin, "erin")
    _, codes = enrol(server, server.login("erin", USER_PASSWORD))
    token, attrs = remember(server, "erin", codes[0])
    assert attrs.get("max-age") == str(7 * 86400)
    erin = signin_with(server, "erin", token)[0]
    r = erin.post(server.api("/me/password"), headers=csrf(erin), json={
        "current_password": USER_PASSWORD,
        "new_password": USER_PASSWORD + " changed"})
    assert r.status_code == 204, r.text
    rows = server.query("SELECT revoked_at FROM mfa_devices WHERE "
                        "user_id = ?", (uid,))
    assert rows and all(x["revoked_at"] is not None for x in rows), rows

    uid2 = new_user(server, admin, "frank")
    _, codes = enrol(server, server.login("frank", USER_PASSWORD))
    remember(server, "frank", codes[0])
    r = admin.post(server.api(f"/users/{uid2}/disable"), headers=csrf(admin))
    assert r.status_code == 200, r.text
    rows = server.query("SELECT revoked_at FROM mfa_devices WHERE "
                        "user_id = ?", (uid2,))
    assert rows and all(x["revoked_at"] is not None for x in rows), rows


def test_policy_methods_are_validated(server, admin):
    for bad in ([], ["recovery"], ["totp", "sms"], "totp", [1]):
        expect_error(admin.patch(server.api("/mfa-policy"),
                                 json={"methods": bad}), 400,
                     "invalid_request")
    for bad in (-1, 91, "30", True):
        expect_error(admin.patch(server.api("/mfa-policy"),
                                 json={"remember_device_days": bad}), 400,
                     "invalid_request")
    assert set_policy(admin, server, methods=["webauthn"])["methods"] == \
        ["webauthn"]
    assert set_policy(admin, server, methods=["recovery", "totp"])[
        "methods"] == ["totp", "recovery"]


def test_webauthn_not_allowed_is_refused(server, admin):
    uid = new_user(server, admin, "gus")
    gus = server.login("gus", USER_PASSWORD)
    secret, codes = enrol(server, gus)
    # Allowed by default: registration options are given.
    r = gus.post(server.api("/me/webauthn/register/options"),
                 headers=csrf(gus), json={"authenticator": "security_key"})
    assert r.status_code == 200, r.text

    set_policy(admin, server, methods=["totp", "recovery"])
    for kind in ("security_key", "passkey"):
        expect_error(gus.post(server.api("/me/webauthn/register/options"),
                              headers=csrf(gus),
                              json={"authenticator": kind}), 403,
                     "mfa_method_not_allowed")
    expect_error(gus.post(server.api("/me/webauthn/register"),
                          headers=csrf(gus), json={"rawId": "AAAA"}), 403,
                 "mfa_method_not_allowed")

    # The second step: not offered, and refused.
    s, r = password_step(server, "gus")
    body = r.json()
    assert body["methods"] == ["totp", "recovery"], body
    expect_error(s.post(server.api("/session/mfa/webauthn/options"),
                        json={"mfa_token": body["mfa_token"]}), 403,
                 "mfa_method_not_allowed")
    expect_error(s.post(server.api("/session/mfa/webauthn"),
                        json={"mfa_token": body["mfa_token"],
                              "rawId": "AAAA"}), 403,
                 "mfa_method_not_allowed")
    assert ("failure", "mfa_method_refused") in [
        (x["result"], x["reason"]) for x in signins(server, uid)]
    # TOTP still completes it.
    r = mfa_step(server, s, "totp", totp(secret, 1))
    assert r.status_code == 200, r.text


def test_totp_not_allowed_is_refused(server, admin):
    uid = new_user(server, admin, "hana")
    hana = server.login("hana", USER_PASSWORD)
    _, codes = enrol(server, hana)
    set_policy(admin, server, methods=["webauthn", "recovery"])
    s, r = password_step(server, "hana")
    body = r.json()
    assert body["mfa_required"] is True and body["methods"] == \
        ["recovery"], body
    expect_error(mfa_step(server, s, "totp", "123456"), 403,
                 "mfa_method_not_allowed")
    assert ("failure", "mfa_method_refused") in [
        (x["result"], x["reason"]) for x in signins(server, uid)]
    r = mfa_step(server, s, "recovery", codes[0])
    assert r.status_code == 200, r.text
    # Enrolment of TOTP is refused too.
    new_user(server, admin, "ivan")
    ivan = server.login("ivan", USER_PASSWORD)
    expect_error(ivan.post(server.api("/me/mfa/totp"), headers=csrf(ivan)),
                 403, "mfa_method_not_allowed")


def test_enrol_now_accepts_webauthn_registration(server, admin):
    new_user(server, admin, "jill")
    set_policy(admin, server, required=True, grace_days=0)
    s, r = password_step(server, "jill")
    body = r.json()
    assert body["mfa_enrolment_required"] is True, body
    s.cookies.clear()
    # The enrol token opens WebAuthn registration like TOTP enrolment.
    r = s.post(server.api("/me/webauthn/register/options"),
               json={"mfa_token": body["mfa_token"],
                     "authenticator": "security_key"})
    assert r.status_code == 200, r.text
    assert r.json()["challenge"] and r.json()["user"]["name"] == "jill"
    # A verify token does not; neither does no token.
    expect_error(s.post(server.api("/me/webauthn/register/options"),
                        json={"mfa_token": "x" * 43}), 401,
                 "mfa_token_invalid")
    expect_error(s.post(server.api("/me/webauthn/register/options"),
                        json={}), 401, "unauthenticated")


def csrf(sess):
    """The session's CSRF header (a server.login session sends it
    already)."""
    tok = sess.headers.get("X-CSRF-Token")
    return {"X-CSRF-Token": tok} if tok else {}


def test_html_form_remembers_the_device_with_the_checkbox(server, admin):
    import html
    import re
    new_user(server, admin, "kim")
    _, codes = enrol(server, server.login("kim", USER_PASSWORD))

    def code_page(s):
        r = s.get(server.url(f"/o/{server.org}/login"))
        csrf_tok = re.search(r'name="csrf_token" value="([^"]+)"',
                             r.text).group(1)
        r = s.post(server.url(f"/o/{server.org}/login"),
                   allow_redirects=False,
                   data={"username": "kim", "password": USER_PASSWORD,
                         "csrf_token": csrf_tok})
        assert r.status_code == 200 and 'name="code"' in r.text, r.text
        return r, html.unescape(re.search(
            r'name="csrf_token" value="([^"]+)"', r.text).group(1))

    # Off: no checkbox.
    r, _ = code_page(server.new_session())
    assert 'name="remember_device"' not in r.text
    set_policy(admin, server, remember_device_days=14)
    s = server.new_session()
    r, tok = code_page(s)
    assert 'name="remember_device"' in r.text and "14 days" in r.text
    r = s.post(server.url(f"/o/{server.org}/login/mfa"),
               allow_redirects=False,
               data={"method": "recovery", "code": codes[0],
                     "remember_device": "1", "csrf_token": tok})
    assert r.status_code == 303, r.text[:500]
    value, attrs = device_cookie(r)
    assert value and attrs.get("max-age") == str(14 * 86400), attrs
    # The same browser signs in through the form without a code.
    s2 = server.new_session()
    s2.cookies.set("gh_device", value)
    r = s2.get(server.url(f"/o/{server.org}/login"))
    csrf_tok = re.search(r'name="csrf_token" value="([^"]+)"',
                         r.text).group(1)
    r = s2.post(server.url(f"/o/{server.org}/login"), allow_redirects=False,
                data={"username": "kim", "password": USER_PASSWORD,
                      "csrf_token": csrf_tok})
    assert r.status_code == 303, r.text[:500]


def test_reauth_interval_bounds_the_remembered_device(server, admin):
    """A security policy's mfa.reauth_interval_s shorter than the
    remembered days: the device stands in for the code only while its
    second factor is younger than that."""
    set_policy(admin, server, remember_device_days=30)
    uid = new_user(server, admin, "erin")
    _, codes = enrol(server, server.login("erin", USER_PASSWORD))
    token, _ = remember(server, "erin", codes[0])
    default = "0" * 31 + "1"

    def reauth(seconds):
        r = admin.patch(server.api(f"/security-policies/{default}"), json={
            "settings": {"mfa": {"reauth_interval_s": seconds}}})
        assert r.status_code == 200, r.text

    reauth(3600)
    _, body = signin_with(server, "erin", token)
    assert "mfa_required" not in body, body
    # Two hours later the code is asked again, though 30 days are not up.
    server.query("UPDATE mfa_devices SET created_at = created_at - 7200000 "
                 "WHERE user_id = ?", (uid,))
    _, body = signin_with(server, "erin", token)
    assert body.get("mfa_required") is True, body
    # Without the interval the remembered days alone decide.
    reauth(None)
    _, body = signin_with(server, "erin", token)
    assert "mfa_required" not in body, body
