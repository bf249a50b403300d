"""The HTML sign-in pages follow the user's effective MFA methods (docs/api.md,
HTML pages): a security policy of the user's group narrows what the
second-step page and the enrol-now page offer; enrolment forced at the form
sign-in can be finished with a security key (Chromium with a virtual
authenticator, keyboard only: tests/browser/enrol_key.mjs); and
/o/{org}/login/continue takes a finished sign-in to its return_to."""

import json
import subprocess

from conftest import SLOW, USER_PASSWORD, expect_error
from test_mfa import audit_actions, signins, totp
from test_mfa_pages import (BROWSER_DIR, ORG, Page, browser_env, check_page,
                            codes_of, login_form, post_form, secret_of)
from test_policy import (add_member, attach, mk_group, mk_policy,
                         user_in_group)

RETURN = f"/o/{ORG}/account/security"


def methods_policy(server, admin, username, methods, required=True,
                   group="Keys", priority=10):
    """A user in a group whose security policy has mfa.methods (and makes
    MFA required); returns the user's id."""
    uid, gid = user_in_group(server, admin, username, group)
    mfa = {"methods": methods}
    if required:
        mfa["required"] = True
    p = mk_policy(server, admin, f"{group} policy", priority, {"mfa": mfa})
    attach(server, admin, p["id"], gid)
    return uid


def reasons(server, uid):
    return [(x["result"], x["reason"]) for x in signins(server, uid)]


def totp_forms(page):
    return [f for f in page.forms if f["fields"].get("method") == "totp"]


def test_enrol_now_with_a_security_key_in_chromium(server, admin):
    uid = methods_policy(server, admin, "kira", ["webauthn"])
    env = browser_env(server, "kira",
                      GH_START=f"/o/{ORG}/login?return_to={RETURN}",
                      GH_RETURN=RETURN)
    r = subprocess.run(["node", str(BROWSER_DIR / "enrol_key.mjs")],
                       cwd=BROWSER_DIR, env=env, capture_output=True,
                       text=True, timeout=90 * SLOW)
    assert r.returncode == 0, f"enrol_key.mjs failed:\n{r.stderr[-3000:]}"
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["problems"] == [] and res["failed"] == [], res
    assert res["login_url"] == f"/o/{ORG}/login", res
    assert res["totp_part"] is False, res
    assert res["enrol_title"] == "Set up two-step verification", res
    assert res["enrol_width"] <= 360 and res["enrol_focus_visible"], res
    # Signed in, at the return_to target.
    assert res["final_url"] == RETURN, res
    assert res["security_heading"] == "Security", res
    assert res["key_names"] == ["Security key"], res
    assert res["authenticator_credentials"] == 1, res
    assert "gh_session" in res["cookies"] and "gh_mfa" not in res["cookies"]
    assert "gh_return_to" not in res["cookies"], res

    rows = server.query("SELECT name, uv FROM webauthn_credentials WHERE "
                        "user_id = ?", (uid,))
    assert [x["name"] for x in rows] == ["Security key"], rows
    # No TOTP enrolment was started for a user who may not use TOTP.
    assert server.query("SELECT count(*) AS n FROM mfa_totp WHERE "
                        "user_id = ?", (uid,))[0]["n"] == 0
    assert ("success", "mfa_webauthn_enrolled") in reasons(server, uid)
    assert "mfa.webauthn.add" in audit_actions(server, uid)


def test_enrol_page_offers_the_users_methods(server, admin):
    # Only webauthn: no TOTP part, no TOTP enrolment, the key button with
    # its script and alert.
    uid = methods_policy(server, admin, "lena", ["webauthn"])
    s = server.new_session()
    r = login_form(server, s, "lena")
    assert r.status_code == 200, r.text[:500]
    p = check_page(r)
    assert s.cookies.get("gh_mfa") and not s.cookies.get("gh_session")
    assert 'id="totp-secret"' not in r.text and 'id="code"' not in r.text
    assert p.forms == [], p.forms
    assert 'id="wa-enrol"' in r.text and 'id="wa-error"' in r.text
    assert "Use a security key or passkey</button>" in r.text
    assert '<script type="module" src="/static/webauthn.js">' in r.text
    assert server.query("SELECT count(*) AS n FROM mfa_totp WHERE "
                        "user_id = ?", (uid,))[0]["n"] == 0
    js = server.new_session().get(server.url("/static/webauthn.js")).text
    assert "wa-enrol" in js and "/login/continue" in js
    # A TOTP code posted anyway is refused: TOTP is not this user's method.
    csrf = s.cookies.get("gh_login_csrf")
    assert csrf
    r = s.post(server.url(f"/o/{ORG}/login/enrol"), allow_redirects=False,
               data={"csrf_token": csrf, "code": "123456"})
    assert r.status_code == 403, r.text[:300]
    assert "does not allow the authenticator app" in r.text
    assert not s.cookies.get("gh_session")

    # Only TOTP: the TOTP part, no key button and no script.
    methods_policy(server, admin, "milo", ["totp"], group="Apps",
                   priority=11)
    s = server.new_session()
    r = login_form(server, s, "milo")
    assert r.status_code == 200, r.text[:500]
    p = check_page(r)
    assert secret_of(r.text) and p.form("/login/enrol")
    assert 'id="wa-enrol"' not in r.text
    assert "/static/webauthn.js" not in r.text

    # The org's default (every method): both, the key as the alternative.
    admin.patch(server.api("/mfa-policy"),
                json={"required": True, "grace_days": 0})
    server.create_user(admin, "nils", password=USER_PASSWORD)
    s = server.new_session()
    r = login_form(server, s, "nils")
    p = check_page(r)
    assert secret_of(r.text) and p.form("/login/enrol")
    assert "Use a security key or passkey instead</button>" in r.text


def test_second_step_offers_the_users_methods(server, admin):
    # TOTP on, for two users; the org allows TOTP.
    ids = {}
    for name in ("olga", "paul"):
        ids[name] = server.create_user(admin, name,
                                       password=USER_PASSWORD)["id"]
        s = server.login(name, USER_PASSWORD)
        secret = s.post(server.api("/me/mfa/totp")).json()["secret"]
        r = s.post(server.api("/me/mfa/totp/confirm"),
                   json={"code": totp(secret)})
        assert r.status_code == 200, r.text
    org = admin.get(server.api("/mfa-policy")).json()
    assert "totp" in json.dumps(org), org
    # olga's group allows only security keys and recovery codes.
    p = mk_policy(server, admin, "No apps", 10,
                  {"mfa": {"methods": ["webauthn", "recovery"]}})
    g = mk_group(server, admin, "NoApps")
    add_member(server, admin, g["id"], ids["olga"])
    attach(server, admin, p["id"], g["id"])

    r = login_form(server, server.new_session(), "olga")
    assert r.status_code == 200 and "/login/mfa" in r.text, r.text[:500]
    page = check_page(r)
    assert totp_forms(page) == [], page.forms
    assert [f["fields"]["method"] for f in page.forms] == ["recovery"]
    assert 'id="approval-request"' not in r.text

    r = login_form(server, server.new_session(), "paul")
    page = check_page(r)
    assert len(totp_forms(page)) == 1, page.forms


def test_login_continue(server, admin):
    # Without a session: back to the sign-in form.
    s = server.new_session()
    r = s.get(server.url(f"/o/{ORG}/login/continue"), allow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    assert r.headers["Location"].endswith(f"/o/{ORG}/login")

    # Forced TOTP enrolment started with a return_to: the codes page's
    # link goes on to it.
    uid = server.create_user(admin, "quin", password=USER_PASSWORD)["id"]
    admin.patch(server.api("/mfa-policy"),
                json={"required": True, "grace_days": 0})
    s = server.new_session()
    r = s.get(server.url(f"/o/{ORG}/login"), params={"return_to": RETURN})
    assert r.status_code == 200 and s.cookies.get("gh_return_to")
    csrf = Page(r.text).form("/login")["fields"]["csrf_token"]
    r = s.post(server.url(f"/o/{ORG}/login"), allow_redirects=False,
               data={"username": "quin", "password": USER_PASSWORD,
                     "csrf_token": csrf})
    assert r.status_code == 200, r.text[:500]
    secret = secret_of(r.text)
    r = post_form(s, server, Page(r.text), "/login/enrol", code=totp(secret))
    assert r.status_code == 200, r.text[:500]
    check_page(r)
    assert len(codes_of(r.text)) == 10
    assert f'href="/o/{ORG}/login/continue"' in r.text
    assert ("success", "mfa_totp_enrolled") in reasons(server, uid)
    r = s.get(server.url(f"/o/{ORG}/login/continue"), allow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    assert r.headers["Location"].endswith(RETURN)
    assert not s.cookies.get("gh_return_to")
    r = s.get(server.url(RETURN), allow_redirects=False)
    assert r.status_code == 200 and 'id="security"' in r.text
    # Once used, the return_to is gone: the account page next time.
    r = s.get(server.url(f"/o/{ORG}/login/continue"), allow_redirects=False)
    assert r.status_code == 303
    assert r.headers["Location"].endswith(f"/o/{ORG}/account")
    expect_error(s.post(server.url(f"/o/{ORG}/login/continue")), 405,
                 "method_not_allowed")
