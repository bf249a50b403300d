"""Approving a sign-in from another device against the real binary
(docs/api.md, Approval from a signed-in device): number matching between
two sessions, wrong numbers, denial recorded as a possible attack, expiry,
who may approve, QR approval (API and HTML page) and the long poll of the
approving device."""

import html
import re
import threading
import time
import urllib.parse

from conftest import USER_PASSWORD, expect_error, metric_sum
from test_mfa import (audit_actions, enrol, mfa_step, new_user,
                      password_step, signins, totp)


def mfa_user(server, admin, name):
    """A user with TOTP; returns (user id, secret, first MFA session)."""
    uid = new_user(server, admin, name)
    sess = server.login(name, USER_PASSWORD)
    secret, _ = enrol(server, sess)
    return uid, secret, mfa_session(server, name, secret)


def mfa_session(server, name, secret):
    """Signs in with password and the next TOTP step: an MFA session
    sending its CSRF token."""
    s, r = password_step(server, name)
    assert r.json()["mfa_required"] is True, r.text
    r = mfa_step(server, s, "totp", totp(secret, 1))
    assert r.status_code == 200, r.text
    s.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return s


def ask(server, name):
    """The new device: password step, then an approval request."""
    s, r = password_step(server, name)
    body = r.json()
    assert body["mfa_required"] is True and "approval" in body["methods"], \
        body
    r = s.post(server.api("/session/mfa/approval"))
    assert r.status_code == 201, r.text
    return s, r.json()


def poll(server, s):
    return s.post(server.api("/session/mfa/approval/poll"), timeout=30)


def pending(server, approver):
    r = approver.get(server.api("/me/approvals"), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["approvals"]


def decide(server, approver, aid, decision, number=None):
    body = {"decision": decision}
    if number is not None:
        body["number"] = number
    return approver.post(server.api(f"/me/approvals/{aid}"), json=body,
                         timeout=30)


def other_number(n):
    return 10 if n != 10 else 11


def test_number_matching_approval_from_a_second_session(server, admin):
    uid, secret, first = mfa_user(server, admin, "alice")
    new, req = ask(server, "alice")
    assert 10 <= req["number"] <= 99
    assert 0 < req["expires_in"] <= 120
    assert req["qr_url"] == f"{server.base}/o/acme/approve?c=" + \
        req["qr_url"].split("c=")[1]
    assert req["qr_svg"].startswith("<svg ")
    # The QR secret is stored only as a digest, the number as is.
    row = server.query("SELECT * FROM mfa_approvals")[0]
    assert row["state"] == "pending" and row["number"] == req["number"]
    assert req["qr_url"].split("c=")[1] not in str(row)

    r = poll(server, new)
    assert r.status_code == 202 and r.json()["state"] == "pending", r.text

    listed = pending(server, first)
    assert [a["id"] for a in listed] == [req["approval_id"]]
    assert "number" not in listed[0]
    assert listed[0]["user_agent"].startswith("gatehouse-integration")
    assert listed[0]["ip"] == "127.0.0.1"

    r = decide(server, first, req["approval_id"], "approve", req["number"])
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text
    # Decided once only.
    expect_error(decide(server, first, req["approval_id"], "deny"), 409,
                 "approval_decided")

    r = poll(server, new)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["username"] == "alice" and body["csrf_token"]
    assert new.cookies.get("gh_session")
    assert new.get(server.api("/me")).status_code == 200
    # The pending sign-in is spent.
    expect_error(poll(server, new), 401, "mfa_token_invalid")
    assert ("success", "mfa_approval") in [
        (x["result"], x["reason"]) for x in signins(server, uid)]
    acts = audit_actions(server, uid)
    for a in ("mfa.approval.request", "mfa.approval.approve",
              "mfa.approval.use"):
        assert a in acts, acts
    # The approved session may approve in turn.
    new.headers["X-CSRF-Token"] = body["csrf_token"]
    assert pending(server, new) == []


def test_an_approval_makes_one_session_even_when_polls_race(server, admin):
    uid, _, first = mfa_user(server, admin, "ulla")
    new, req = ask(server, "ulla")
    assert decide(server, first, req["approval_id"], "approve",
                  req["number"]).status_code == 200
    token = new.cookies.get("gh_mfa")
    got = []

    def racer():
        s = server.new_session()
        got.append(s.post(server.api("/session/mfa/approval/poll"),
                          json={"mfa_token": token}, timeout=30))

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    codes = sorted(r.status_code for r in got)
    assert codes == [200, 401, 401, 401], [r.text for r in got]
    assert all(r.json()["error"] == "mfa_token_invalid"
               for r in got if r.status_code == 401)
    n = server.query("SELECT count(*) AS n FROM sessions WHERE user_id = ? "
                     "AND mfa_at IS NOT NULL", (uid,))[0]["n"]
    assert n == 2, n


def test_wrong_numbers_are_refused_and_the_third_denies(server, admin):
    uid, secret, first = mfa_user(server, admin, "carol")
    new, req = ask(server, "carol")
    wrong = other_number(req["number"])
    for _ in range(2):
        expect_error(decide(server, first, req["approval_id"], "approve",
                            wrong), 400, "approval_number_mismatch")
        assert poll(server, new).status_code == 202
    expect_error(decide(server, first, req["approval_id"], "approve",
                        wrong), 400, "approval_number_mismatch")
    # Denied now: even the right number is too late.
    expect_error(decide(server, first, req["approval_id"], "approve",
                        req["number"]), 409, "approval_decided")
    expect_error(poll(server, new), 401, "approval_denied")
    assert "mfa.approval.deny" in audit_actions(server, uid)
    expect_error(decide(server, first, req["approval_id"], "approve",
                        "42"), 400, "invalid_request")
    expect_error(decide(server, first, req["approval_id"], "maybe"), 400,
                 "invalid_request")


def test_denial_is_recorded_as_a_possible_attack(server, admin):
    uid, secret, first = mfa_user(server, admin, "dave")
    new, req = ask(server, "dave")
    r = decide(server, first, req["approval_id"], "deny")
    assert r.status_code == 200 and r.json()["state"] == "denied", r.text
    ev = server.query("SELECT changes FROM audit_events WHERE action = "
                      "'mfa.approval.deny' AND target_id = ?", (uid,))
    assert len(ev) == 1 and "possible_attack" in ev[0]["changes"], ev
    assert ("failure", "mfa_approval_denied") in [
        (x["result"], x["reason"]) for x in signins(server, uid)]
    lock = server.query("SELECT failures FROM mfa_lockouts WHERE "
                        "user_id = ?", (uid,))
    assert lock and lock[0]["failures"] == 1, lock
    expect_error(poll(server, new), 401, "approval_denied")
    # The denied sign-in is over: no new request on it.
    expect_error(new.post(server.api("/session/mfa/approval")), 401,
                 "mfa_token_invalid")
    assert pending(server, first) == []
    # Dave is told, with the address and browser of the denied device.
    feed = first.get(server.api("/me/notifications")).json()
    denied = [n for n in feed["notifications"]
              if n["kind"] == "signin_denied"]
    assert len(denied) == 1, feed
    assert denied[0]["data"]["method"] == "approval"
    assert denied[0]["data"]["source_ip"] == "127.0.0.1"
    assert denied[0]["data"]["user_agent"] == \
        new.headers["User-Agent"], denied


def test_expired_request_cannot_be_approved(server_factory):
    server = server_factory(serve_env={"GATEHOUSE_MFA_APPROVAL_TTL_S": "2"})
    admin = server.login()
    uid, secret, first = mfa_user(server, admin, "erin")
    new, req = ask(server, "erin")
    assert req["expires_in"] <= 2
    time.sleep(2.5)
    expect_error(decide(server, first, req["approval_id"], "approve",
                        req["number"]), 410, "approval_expired")
    expect_error(poll(server, new), 401, "approval_expired")
    assert pending(server, first) == []
    # A fresh request on the same sign-in works.
    r = new.post(server.api("/session/mfa/approval"))
    assert r.status_code == 201, r.text
    r2 = decide(server, first, r.json()["approval_id"], "approve",
                r.json()["number"])
    assert r2.status_code == 200, r2.text
    assert poll(server, new).status_code == 200


def test_password_only_sessions_and_tokens_cannot_approve(server, admin):
    uid, secret, first = mfa_user(server, admin, "frank")
    new, req = ask(server, "frank")
    # The owner has no second factor: a password-only session.
    pw = server.login("admin")
    expect_error(pw.get(server.api("/me/approvals")), 403,
                 "mfa_session_required")
    expect_error(decide(server, pw, req["approval_id"], "approve",
                        req["number"]), 403, "mfa_session_required")
    bearer = server.bearer(server.create_token(admin)["token"])
    expect_error(bearer.get(server.api("/me/approvals")), 403,
                 "mfa_session_required")
    expect_error(decide(server, bearer, req["approval_id"], "approve",
                        req["number"]), 403, "mfa_session_required")
    assert poll(server, new).status_code == 202


def test_another_users_session_cannot_approve(server, admin):
    _, _, first = mfa_user(server, admin, "gina")
    _, _, other = mfa_user(server, admin, "hank")
    new, req = ask(server, "gina")
    assert pending(server, other) == []
    expect_error(decide(server, other, req["approval_id"], "approve",
                        req["number"]), 404, "approval_not_found")
    code = req["qr_url"].split("c=")[1]
    expect_error(other.post(server.api("/me/approvals/qr"),
                            json={"code": code, "decision": "approve"}),
                 404, "approval_not_found")
    assert poll(server, new).status_code == 202


def test_no_approval_without_a_signed_in_mfa_device(server, admin):
    uid = new_user(server, admin, "ivan")
    sess = server.login("ivan", USER_PASSWORD)
    enrol(server, sess)
    s, r = password_step(server, "ivan")
    assert "approval" not in r.json()["methods"], r.text
    expect_error(s.post(server.api("/session/mfa/approval")), 409,
                 "approval_unavailable")
    expect_error(server.new_session().post(
        server.api("/session/mfa/approval")), 401, "mfa_token_invalid")


def test_policy_can_refuse_approval(server, admin):
    _, secret, first = mfa_user(server, admin, "judy")
    r = admin.patch(server.api("/mfa-policy"),
                    json={"methods": ["totp", "recovery"]})
    assert r.status_code == 200 and "approval" not in r.json()["methods"]
    s, r = password_step(server, "judy")
    assert "approval" not in r.json()["methods"]
    expect_error(s.post(server.api("/session/mfa/approval")), 403,
                 "mfa_method_refused")


def test_qr_approval_through_the_api(server, admin):
    uid, _, first = mfa_user(server, admin, "kate")
    new, req = ask(server, "kate")
    code = req["qr_url"].split("c=")[1]
    expect_error(first.post(server.api("/me/approvals/qr"),
                            json={"code": "x" * 43, "decision": "approve"}),
                 404, "approval_not_found")
    r = first.post(server.api("/me/approvals/qr"),
                   json={"code": code, "decision": "approve"})
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text
    assert poll(server, new).status_code == 200


def test_qr_approval_through_the_html_page(server, admin):
    uid, _, first = mfa_user(server, admin, "liam")
    new, req = ask(server, "liam")
    path = urllib.parse.urlparse(req["qr_url"])
    url = server.base + path.path + "?" + path.query
    # Without an MFA session the page only points to sign-in.
    r = server.new_session().get(url)
    assert r.status_code == 401 and "/o/acme/login" in r.text
    assert "<script>" not in r.text
    r = first.get(url)
    assert r.status_code == 200, r.text
    assert "gatehouse-integration" in html.unescape(r.text)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    c = re.search(r'name="c" value="([^"]+)"', r.text).group(1)
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    # A forged form (no CSRF token) is refused.
    r = first.post(server.base + "/o/acme/approve",
                   data={"c": c, "decision": "approve"})
    assert r.status_code == 403, r.text
    r = first.post(server.base + "/o/acme/approve",
                   data={"c": c, "decision": "approve", "csrf_token": csrf})
    assert r.status_code == 200 and "approved" in r.text.lower(), r.text
    assert poll(server, new).status_code == 200


def test_long_poll_wakes_when_a_request_arrives(server, admin):
    _, _, first = mfa_user(server, admin, "mona")
    out = {}

    def waiter():
        t0 = time.monotonic()
        out["r"] = first.get(server.api("/me/approvals?wait=20"),
                             timeout=40)
        out["t"] = time.monotonic() - t0

    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(1.0)
    assert th.is_alive()
    # Other requests are served while it waits.
    assert admin.get(server.api("/me")).status_code == 200
    new, req = ask(server, "mona")
    th.join(30)
    assert not th.is_alive()
    assert out["r"].status_code == 200, out["r"].text
    assert [a["id"] for a in out["r"].json()["approvals"]] == \
        [req["approval_id"]]
    assert out["t"] < 8, out["t"]


def test_long_poll_times_out_empty_and_checks_wait(server, admin):
    _, _, first = mfa_user(server, admin, "nina")
    t0 = time.monotonic()
    r = first.get(server.api("/me/approvals?wait=2"), timeout=30)
    took = time.monotonic() - t0
    assert r.status_code == 200 and r.json()["approvals"] == [], r.text
    assert 1.5 <= took < 6, took
    for bad in ("26", "-1", "x", "1.5"):
        expect_error(first.get(server.api(f"/me/approvals?wait={bad}")),
                     400, "invalid_request")


def test_pages_load_the_approval_script_without_inline_code(server, admin):
    _, secret, first = mfa_user(server, admin, "olga")
    r = server.new_session().get(server.base + "/static/approval.js")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/javascript")
    assert "/me/approvals?wait=" in r.text
    assert "/session/mfa/approval/poll" in r.text
    # The account page of an MFA session lists requests through it.
    r = first.get(server.base + "/o/acme/account")
    assert r.status_code == 200, r.text
    assert '<script src="/static/approval.js" defer></script>' in r.text
    assert 'id="approvals" data-org="acme"' in r.text
    assert "<script>" not in r.text
    # A password-only session's page does not offer it.
    r = admin.get(server.base + "/o/acme/account")
    assert r.status_code == 200 and 'id="approvals"' not in r.text
    # The second step of the form sign-in offers approval.
    s = server.new_session()
    page = s.get(server.base + "/o/acme/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    r = s.post(server.base + "/o/acme/login",
               data={"csrf_token": csrf.group(1), "username": "olga",
                     "password": USER_PASSWORD})
    assert r.status_code == 200, r.text
    assert 'id="approval-request" data-org="acme"' in r.text
    assert '<script src="/static/approval.js" defer></script>' in r.text
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    # What the script does next, through the gh_mfa cookie of the form.
    r = s.post(server.api("/session/mfa/approval"), json={})
    assert r.status_code == 201, r.text
    num = r.json()["number"]
    assert decide(server, first, r.json()["approval_id"], "approve",
                  num).status_code == 200
    r = s.post(server.api("/session/mfa/approval/poll"), json={})
    assert r.status_code == 200, r.text
    assert s.get(server.base + "/o/acme/account").status_code == 200


def test_long_polls_are_capped_and_end_with_their_session(server, admin):
    _, _, first = mfa_user(server, admin, "pete")
    results = []

    def waiter():
        s = server.new_session()
        s.cookies.update(first.cookies)
        r = s.get(server.api("/me/approvals?wait=4"), timeout=30)
        results.append(r.status_code)

    threads = [threading.Thread(target=waiter) for _ in range(64)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    r = first.get(server.api("/me/approvals?wait=4"), timeout=30)
    expect_error(r, 503, "unavailable")
    assert r.headers.get("Retry-After")
    for t in threads:
        t.join(30)
    assert results == [200] * 64, results

    # A wait ends when its session does.
    out = {}
    th = threading.Thread(target=lambda: out.setdefault(
        "r", first.get(server.api("/me/approvals?wait=20"), timeout=40)))
    th.start()
    time.sleep(1.0)
    assert first.delete(server.api("/session")).status_code == 204
    th.join(30)
    assert out["r"].status_code == 401, out["r"].text


def test_stopping_the_server_answers_parked_long_polls(server, admin):
    _, _, first = mfa_user(server, admin, "quin")
    out = {}
    th = threading.Thread(target=lambda: out.setdefault(
        "r", first.get(server.api("/me/approvals?wait=20"), timeout=40)))
    th.start()
    # Stop only once the long poll is parked (not still on its way in).
    end = time.monotonic() + 30
    while time.monotonic() < end and metric_sum(
            server.metrics(),
            "gatehouse_http_parked_requests") < 1:
        time.sleep(0.05)
    t0 = time.monotonic()
    server.stop()
    th.join(30)
    assert time.monotonic() - t0 < 10
    assert out["r"].status_code == 200 and out["r"].json() == \
        {"approvals": []}, out["r"].text
