"""The HTML pages of multi-factor authentication against the real binary
(docs/api.md, HTML pages): the security page, TOTP enrolment through forms
with codes from oathtool, recovery codes shown once, removal, enrolment
forced at the form sign-in ending with a session, the second-step page
offering a security key, strict CSP without inline script or style, and
CSRF refusals. The keyboard-only run at 360 px width in Chromium is
tests/browser/mfa_pages.mjs, driven by the last test."""

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from conftest import REPO, SLOW, USER_PASSWORD, expect_error
from test_mfa import audit_actions, signins, totp, wrong_code

ORG = "acme"
BROWSER_DIR = REPO / "tests" / "browser"


class Page(HTMLParser):
    """Collects forms (action, hidden fields, input names), every tag's
    attributes and the text of inline <script> and <style>."""

    def __init__(self, text):
        super().__init__()
        self.forms, self.tags, self.inline = [], [], []
        self._in = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "form":
            self.forms.append({"action": a.get("action"), "fields": {},
                               "inputs": []})
        elif tag == "input" and self.forms:
            f = self.forms[-1]
            f["inputs"].append(a)
            if a.get("type") == "hidden":
                f["fields"][a["name"]] = a.get("value", "")
        if tag in ("script", "style"):
            self._in = tag
            if tag == "script" and "src" not in a:
                self.inline.append("script")

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "style":
            self.inline.append("style")

    def form(self, action_end):
        for f in self.forms:
            if f["action"].endswith(action_end):
                return f
        raise AssertionError(f"no form to {action_end}: {self.forms}")


def check_page(r):
    """Asserts the security headers and that the page carries no inline
    script or style and loads nothing from elsewhere; returns the Page."""
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "style-src 'self'" in csp and "form-action 'self'" in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Type"].startswith("text/html")
    p = Page(r.text)
    assert p.inline == [], p.inline
    for tag, a in p.tags:
        assert "style" not in a, (tag, a)
        assert not any(k.startswith("on") for k in a), (tag, a)
        for k in ("src", "href", "action"):
            v = a.get(k) or ""
            assert not v.startswith(("http:", "https:", "//")), (tag, a)
    assert any(t == "meta" and a.get("name") == "viewport"
               for t, a in p.tags)
    for f in p.forms:
        assert f["fields"].get("csrf_token"), f
    return p


def login_form(server, s, username, password=USER_PASSWORD):
    r = s.get(server.url(f"/o/{ORG}/login"))
    csrf = Page(r.text).form("/login")["fields"]["csrf_token"]
    return s.post(server.url(f"/o/{ORG}/login"), allow_redirects=False,
                  data={"username": username, "password": password,
                        "csrf_token": csrf})


def signed_in(server, username):
    """A requests.Session signed in through the HTML form."""
    s = server.new_session()
    r = login_form(server, s, username)
    assert r.status_code == 303, r.text[:500]
    return s


def post_form(s, server, page, action_end, **data):
    f = page.form(action_end)
    body = dict(f["fields"], **data)
    return s.post(server.url(f["action"]), data=body, allow_redirects=False)


def secret_of(text):
    return re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>',
                     text).group(1)


def codes_of(text):
    block = re.search(r'<ol class="codes" id="recovery-codes">(.*?)</ol>',
                      text, re.S).group(1)
    return re.findall(r"<code>([A-Z0-9-]+)</code>", block)


def security(s, server):
    r = s.get(server.url(f"/o/{ORG}/account/security"),
              allow_redirects=False)
    assert r.status_code == 200, r.text[:300]
    return r, check_page(r)


def test_security_page_enrols_totp_and_shows_recovery_codes_once(server,
                                                                  admin):
    uid = server.create_user(admin, "iris", password=USER_PASSWORD)["id"]
    s = signed_in(server, "iris")
    r = s.get(server.url(f"/o/{ORG}/account"))
    assert f'href="/o/{ORG}/account/security"' in r.text
    check_page(r)
    r, p = security(s, server)
    assert 'id="totp-state">Off.' in r.text
    assert "Two-step verification is optional" in r.text
    assert "None yet." in r.text

    r = post_form(s, server, p, "/account/security/totp")
    assert r.status_code == 200, r.text[:500]
    p = check_page(r)
    secret = secret_of(r.text)
    qr = [a for t, a in p.tags if t == "img" and a.get("id") == "totp-qr"]
    assert qr and qr[0]["src"].startswith("data:image/svg+xml,")
    assert "script" not in qr[0]["src"].lower()
    assert qr[0]["alt"]
    code_in = [i for i in p.form("/totp/confirm")["inputs"]
               if i.get("name") == "code"][0]
    assert code_in["autocomplete"] == "one-time-code"
    assert code_in["inputmode"] == "numeric" and "autofocus" in code_in
    assert re.search(r'<label for="code">', r.text)

    # A wrong code: the error is tied to the field, nothing enrolled.
    bad = post_form(s, server, p, "/totp/confirm", code=wrong_code(secret))
    assert bad.status_code == 400, bad.text[:300]
    bp = check_page(bad)
    assert 'role="alert"' in bad.text
    code_in = [i for i in bp.form("/totp/confirm")["inputs"]
               if i.get("name") == "code"][0]
    assert code_in["aria-describedby"] == "form-error"
    assert 'id="form-error"' in bad.text

    r = post_form(s, server, p, "/totp/confirm", code=totp(secret))
    assert r.status_code == 200, r.text[:500]
    check_page(r)
    codes = codes_of(r.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4}){3}", c)
               for c in codes), codes
    acts = audit_actions(server, uid)
    assert "mfa.totp.enrol" in acts and \
        "mfa.recovery_codes.generate" in acts

    # Shown once: the security page gives the count, never the codes.
    r, p = security(s, server)
    assert 'id="totp-state">On since' in r.text
    assert "Recovery codes left: 10 of 10" in r.text
    assert not any(c in r.text for c in codes)
    assert secret not in r.text

    # A recovery code signs in once through the form's second page.
    s2 = server.new_session()
    r2 = login_form(server, s2, "iris")
    assert r2.status_code == 200 and 'name="code"' in r2.text
    p2 = check_page(r2)
    assert "wa-second" not in r2.text     # no security key registered
    rec = [f for f in p2.forms if f["fields"].get("method") == "recovery"]
    r2 = s2.post(server.url(rec[0]["action"]), allow_redirects=False,
                 data=dict(rec[0]["fields"], code=codes[0]))
    assert r2.status_code == 303, r2.text[:300]
    r, p = security(s, server)
    assert "Recovery codes left: 9 of 10" in r.text

    # New recovery codes: shown once, the old ones are gone.
    r = post_form(s, server, p, "/account/security/recovery-codes")
    assert r.status_code == 200, r.text[:300]
    new = codes_of(r.text)
    assert len(new) == 10 and not set(new) & set(codes)
    r, p = security(s, server)
    assert "Recovery codes left: 10 of 10" in r.text

    # Turning TOTP off needs a current code; a wrong one is refused.
    r = post_form(s, server, p, "/totp/remove", code=wrong_code(secret))
    assert r.status_code == 403 and "wrong" in r.text, r.text[:300]
    rp = check_page(r)
    code_in = [i for i in rp.form("/totp/remove")["inputs"]
               if i.get("name") == "code"][0]
    assert code_in["aria-describedby"] == "form-error"
    r = post_form(s, server, p, "/totp/remove", code=totp(secret, 1))
    assert r.status_code == 200, r.text[:300]
    assert 'id="totp-state">Off.' in r.text
    assert "mfa.totp.remove" in audit_actions(server, uid)
    rows = server.query("SELECT count(*) AS n FROM mfa_recovery_codes "
                        "WHERE user_id = ?", (uid,))
    assert rows[0]["n"] == 0


def test_forms_without_the_csrf_token_are_refused(server, admin):
    server.create_user(admin, "jack", password=USER_PASSWORD)
    s = signed_in(server, "jack")
    r, p = security(s, server)
    for path in ("/totp", "/totp/confirm", "/totp/remove",
                 "/recovery-codes", "/webauthn/" + "a" * 32 + "/remove"):
        url = server.url(f"/o/{ORG}/account/security{path}")
        expect_error(s.post(url, data={"code": "123456"},
                            allow_redirects=False), 403, "csrf_failed")
        expect_error(s.post(url, data={"csrf_token": "x" * 43},
                            allow_redirects=False), 403, "csrf_failed")
    # Nothing started.
    assert 'id="totp-state">Off.' in security(s, server)[0].text
    assert server.query("SELECT count(*) AS n FROM mfa_totp")[0]["n"] == 0
    # Without a session: back to the sign-in form.
    anon = server.new_session()
    r = anon.get(server.url(f"/o/{ORG}/account/security"),
                 allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"].endswith("/login")
    r = anon.post(server.url(f"/o/{ORG}/account/security/totp"),
                  data={"csrf_token": p.forms[0]["fields"]["csrf_token"]},
                  allow_redirects=False)
    assert r.status_code == 303
    # The enrol-now form checks the login CSRF cookie too.
    r = anon.post(server.url(f"/o/{ORG}/login/enrol"),
                  data={"code": "123456"}, allow_redirects=False)
    assert r.status_code == 403 and "expired" in r.text


def test_enrol_now_at_the_form_sign_in_ends_with_a_session(server, admin):
    uid = server.create_user(admin, "kate", password=USER_PASSWORD)["id"]
    r = admin.patch(server.api("/mfa-policy"),
                    json={"required": True, "grace_days": 0})
    assert r.status_code == 200, r.text
    s = server.new_session()
    r = login_form(server, s, "kate")
    assert r.status_code == 200, r.text[:500]
    p = check_page(r)
    assert "requires two-step verification" in r.text
    assert s.cookies.get("gh_mfa") and not s.cookies.get("gh_session")
    secret = secret_of(r.text)
    assert p.form("/login/enrol")

    # Not signed in yet.
    assert s.get(server.url(f"/o/{ORG}/account"),
                 allow_redirects=False).status_code == 303
    bad = post_form(s, server, p, "/login/enrol", code=wrong_code(secret))
    assert bad.status_code == 400, bad.text[:300]
    check_page(bad)
    assert ("failure", "mfa_totp_invalid") in [
        (x["result"], x["reason"]) for x in signins(server, uid)]

    r = post_form(s, server, p, "/login/enrol", code=totp(secret))
    assert r.status_code == 200, r.text[:500]
    check_page(r)
    codes = codes_of(r.text)
    assert len(codes) == 10
    assert f'href="/o/{ORG}/login/continue"' in r.text
    assert s.cookies.get("gh_session") and not s.cookies.get("gh_mfa")
    # No return_to: the link goes on to the account page.
    r = s.get(server.url(f"/o/{ORG}/login/continue"), allow_redirects=False)
    assert r.status_code == 303
    assert r.headers["Location"].endswith(f"/o/{ORG}/account")
    r = s.get(server.url(f"/o/{ORG}/account"), allow_redirects=False)
    assert r.status_code == 200 and "kate" in r.text
    assert ("success", "mfa_totp_enrolled") in [
        (x["result"], x["reason"]) for x in signins(server, uid)]
    assert "mfa.totp.enrol" in audit_actions(server, uid)

    # The pending sign-in is spent: the form cannot be replayed.
    r = post_form(s, server, p, "/login/enrol", code=totp(secret, 1))
    assert r.status_code in (401, 403), r.text[:300]

    # Next time the policy asks for the code on the second page.
    s3 = server.new_session()
    r = login_form(server, s3, "kate")
    assert r.status_code == 200 and "/login/mfa" in r.text
    check_page(r)


def test_enrol_now_restart_shows_a_new_key(server, admin):
    server.create_user(admin, "liam", password=USER_PASSWORD)
    admin.patch(server.api("/mfa-policy"),
                json={"required": True, "grace_days": 0})
    s = server.new_session()
    r = login_form(server, s, "liam")
    p = Page(r.text)
    first = secret_of(r.text)
    bad = post_form(s, server, p, "/login/enrol", code=wrong_code(first))
    bp = check_page(bad)
    restart = [f for f in bp.forms if "restart" in f["fields"]]
    assert restart, bp.forms
    r = s.post(server.url(restart[0]["action"]), allow_redirects=False,
               data=restart[0]["fields"])
    assert r.status_code == 200, r.text[:300]
    second = secret_of(r.text)
    assert second != first
    r = post_form(s, server, Page(r.text), "/login/enrol", code=totp(second))
    assert r.status_code == 200 and len(codes_of(r.text)) == 10


def test_second_step_offers_the_security_key_with_the_script(server, admin):
    uid = server.create_user(admin, "mona", password=USER_PASSWORD)["id"]
    s = signed_in(server, "mona")
    r, p = security(s, server)
    secret = secret_of(post_form(s, server, p, "/account/security/totp").text)
    r = s.post(server.url(f"/o/{ORG}/account/security/totp/confirm"),
               data={"csrf_token": p.forms[0]["fields"]["csrf_token"],
                     "code": totp(secret)}, allow_redirects=False)
    assert r.status_code == 200
    # A stored security key (registration itself is the browser test's).
    server.query("INSERT INTO webauthn_credentials (id, user_id, "
                 "credential_id, name, alg, public_key, sign_count, uv, "
                 "backup_eligible, backup_state, aaguid, created_at, "
                 "last_used_at, regressions) VALUES ('" + "b" * 32 +
                 "', ?, 'Y3JlZA', "
                 "'Desk key', -7, x'00', 0, 0, 0, 0, '', 1700000000000, NULL, 0)",
                 (uid,))
    r, p = security(s, server)
    assert "Desk key" in r.text and "never used" in r.text
    assert '<script type="module" src="/static/webauthn.js">' in r.text

    s2 = server.new_session()
    r = login_form(server, s2, "mona")
    p2 = check_page(r)
    assert 'id="wa-second"' in r.text
    assert '<script type="module" src="/static/webauthn.js">' in r.text
    assert len(p2.forms) == 2       # TOTP and recovery, each its own form
    js = server.new_session().get(server.url("/static/webauthn.js"))
    assert "wa-second" in js.text and "/session/mfa/webauthn" in js.text

    # Rename and remove through the forms, audited.
    r = post_form(s, server, p, "/rename", name="Travel key")
    assert r.status_code == 200 and "Travel key" in r.text, r.text[:300]
    r = post_form(s, server, Page(r.text), "/rename", name="")
    expect_error(r, 400, "invalid_request")
    r, p = security(s, server)
    r = post_form(s, server, p, "b" * 32 + "/remove")
    assert r.status_code == 200 and "None yet." in r.text, r.text[:300]
    acts = [x["action"] for x in server.query(
        "SELECT action FROM audit_events ORDER BY seq")]
    assert "mfa.webauthn.rename" in acts and "mfa.webauthn.remove" in acts


def browser_env(server, username, **extra):
    assert shutil.which("node"), "node is missing"
    assert Path("/usr/bin/chromium").exists(), "chromium is missing"
    assert (BROWSER_DIR / "node_modules" / "playwright-core").is_dir(), \
        "playwright-core is missing: npm ci --prefix tests/browser"
    return dict(os.environ, GH_BASE=f"http://localhost:{server.port}",
                GH_ORG=ORG, GH_USER=username, GH_PASSWORD=USER_PASSWORD,
                **extra)


def test_security_key_added_and_used_from_the_pages_in_chromium(server,
                                                                 admin):
    uid = server.create_user(admin, "owen", password=USER_PASSWORD)["id"]
    r = subprocess.run(["node", str(BROWSER_DIR / "mfa_pages.mjs")],
                       cwd=BROWSER_DIR, env=browser_env(server, "owen",
                                                        GH_MODE="key"),
                       capture_output=True, text=True, timeout=90 * SLOW)
    assert r.returncode == 0, f"mfa_pages.mjs failed:\n{r.stderr[-3000:]}"
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["csp_problems"] == [], res
    assert res["key_names"] == ["Desk key"], res
    assert res["second_focus"] == "wa-second", res
    assert res["account_user"] == "owen", res
    for k, w in res["widths"].items():
        assert w <= 360, (k, w)
    assert ("success", "mfa_webauthn") in [
        (x["result"], x["reason"]) for x in signins(server, uid)]
    acts = audit_actions(server, uid)
    assert "mfa.webauthn.add" in acts, acts


def test_keyboard_only_enrolment_at_360px_in_chromium(server, admin):
    server.create_user(admin, "nora", password=USER_PASSWORD)
    admin.patch(server.api("/mfa-policy"),
                json={"required": True, "grace_days": 0})
    env = browser_env(server, "nora")
    proc = subprocess.Popen(["node", str(BROWSER_DIR / "mfa_pages.mjs")],
                            cwd=BROWSER_DIR, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    # The script prints the key it read from the page and waits for the
    # code, which oathtool computes here.
    line = proc.stdout.readline()
    assert line.startswith("SECRET "), proc.stderr.read()[-3000:]
    proc.stdin.write(totp(line.split()[1]) + "\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=90 * SLOW)
    assert proc.returncode == 0, f"mfa_pages.mjs failed:\n{err[-3000:]}"
    res = json.loads(out.strip().splitlines()[-1])
    assert res["csp_problems"] == [], res
    assert res["codes"] == 10, res
    assert res["account_user"] == "nora", res
    assert res["totp_state"].startswith("On since"), res
    for k, w in res["widths"].items():
        assert w <= 360, (k, w)
    assert all(res["focus_visible"].values()), res
