"""JSON sign-in, /me, sign-out and CSRF (docs/api.md, Authentication and
Sign-in and the account)."""

import time

import requests

from conftest import (ADMIN_PASSWORD, OTHER_PASSWORD, USER_AGENT,
                      USER_PASSWORD, cookie_attrs, error_of, expect_error,
                      set_cookies)


def session_cookie(resp):
    found = [cookie_attrs(h) for h in set_cookies(resp)]
    found = [c for c in found if c[0] == "gh_session"]
    assert len(found) == 1, f"expected one gh_session cookie: {set_cookies(resp)}"
    return found[0]


def test_signin_returns_user_session_csrf_and_a_scoped_cookie(server):
    r = server.signin("admin", ADMIN_PASSWORD)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert {"user", "session", "csrf_token"} <= set(body), body
    user = body["user"]
    assert user["username"] == "admin"
    assert user["role"] == "owner"
    assert user["state"] == "active"
    for k in ("id", "email", "display_name", "created_at", "updated_at",
              "last_signin_at", "password_changed_at"):
        assert k in user, f"user object lacks {k}: {user}"
    assert "password_hash" not in user and "password" not in user
    assert isinstance(body["csrf_token"], str) and len(body["csrf_token"]) >= 16

    name, value, attrs = session_cookie(r)
    # 256-bit random identifier: at least 43 base64url or 64 hex characters.
    assert len(value) >= 43, value
    assert "httponly" in attrs, attrs
    assert attrs.get("samesite", "").lower() == "lax", attrs
    assert attrs.get("path") == "/o/acme/", attrs
    assert "secure" not in attrs, "Secure under --dev on loopback"
    assert "domain" not in attrs, attrs
    # The session id is stored hashed, never as the cookie value.
    rows = server.query("SELECT * FROM sessions")
    assert rows and all(value not in str(row.values()) for row in rows)


def test_me_with_the_cookie(server, admin):
    r = admin.get(server.api("/me"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["username"] == "admin"
    assert body["user"]["id"] == admin.user["id"]
    assert body["csrf_token"] == admin.csrf
    assert body["session"], body


def test_me_without_credentials_is_401_unauthenticated(server):
    expect_error(requests.get(server.api("/me"), timeout=10), 401,
                 "unauthenticated")
    r = requests.get(server.api("/me"), timeout=10,
                     cookies={"gh_session": "A" * 43})
    expect_error(r, 401, "unauthenticated")
    r = requests.get(server.api("/me"), timeout=10,
                     headers={"Cookie": "gh_session="})
    expect_error(r, 401, "unauthenticated")


def test_unknown_user_and_wrong_password_get_the_same_answer(server):
    server.cli("user", "add", "--org", "acme", "bob",
               env={"GATEHOUSE_USER_PASSWORD": USER_PASSWORD})
    a = server.signin("admin", "Wrong-Password-1234!")
    b = server.signin("nobody-here", "Wrong-Password-1234!")
    c = server.signin("bob", ADMIN_PASSWORD)
    bodies = []
    for r in (a, b, c):
        body = expect_error(r, 401, "invalid_credentials")
        assert not any(k.lower() == "set-cookie" and "gh_session=" in v
                       and "max-age=0" not in v.lower()
                       for k, v in r.headers.items()), r.headers
        bodies.append({k: v for k, v in body.items() if k != "request_id"})
    assert bodies[0] == bodies[1] == bodies[2], bodies
    assert len({r.json()["request_id"] for r in (a, b, c)}) == 3


def test_signin_input_errors(server):
    s = server.new_session()
    expect_error(s.post(server.api("/session"), json={"username": "admin"}),
                 400, "invalid_request")
    expect_error(s.post(server.api("/session"),
                        json={"username": "admin", "password": 123}),
                 400, "invalid_request")
    expect_error(s.post(server.api("/session"),
                        json={"username": "admin", "password": "x", "extra": 1}),
                 400, "invalid_request")
    r = s.get(server.api("/session"))
    expect_error(r, 405, "method_not_allowed")
    allow = {m.strip() for m in r.headers.get("Allow", "").split(",")}
    assert {"POST", "DELETE"} <= allow, r.headers.get("Allow")


def test_signout_revokes_the_session_and_clears_the_cookie(server, admin):
    r = admin.delete(server.api("/session"))
    assert r.status_code == 204, r.text
    name, value, attrs = session_cookie(r)
    assert value == "" or attrs.get("max-age") == "0" or "expires" in attrs, attrs
    assert attrs.get("path") == "/o/acme/", attrs
    # The old cookie value no longer works, even if a client keeps it.
    r = requests.get(server.api("/me"), timeout=10,
                     cookies={"gh_session": admin.cookie})
    expect_error(r, 401, "unauthenticated")
    rows = server.query("SELECT revoked_at FROM sessions")
    assert any(row["revoked_at"] for row in rows), rows


def test_state_changing_requests_need_the_csrf_token(server, admin):
    bare = server.new_session()
    bare.cookies.set("gh_session", admin.cookie)
    users_before = server.query("SELECT count(*) AS n FROM users")[0]["n"]

    expect_error(bare.delete(server.api("/session")), 403, "csrf_failed")
    expect_error(bare.patch(server.api("/org"), json={"name": "Pwned"}), 403,
                 "csrf_failed")
    expect_error(bare.post(server.api("/users"),
                           json={"username": "mallory"}), 403, "csrf_failed")
    expect_error(bare.post(server.api("/tokens"),
                           json={"name": "x", "expires_in_days": 1}), 403,
                 "csrf_failed")
    # A wrong token is no better than none.
    for wrong in ("x", admin.csrf[:-1] + ("A" if admin.csrf[-1] != "A" else "B"),
                  admin.csrf + "0"):
        r = bare.patch(server.api("/org"), json={"name": "Pwned"},
                       headers={"X-CSRF-Token": wrong})
        expect_error(r, 403, "csrf_failed")

    assert server.query("SELECT count(*) AS n FROM users")[0]["n"] == users_before
    assert admin.get(server.api("/org")).json()["name"] != "Pwned"
    assert admin.get(server.api("/me")).status_code == 200  # still signed in
    # With the token it works.
    r = admin.patch(server.api("/org"), json={"name": "Acme Renamed"})
    assert r.status_code == 200, r.text


def test_csrf_token_of_another_session_is_refused(server, admin):
    other = server.login()
    bare = server.new_session()
    bare.cookies.set("gh_session", admin.cookie)
    r = bare.patch(server.api("/org"), json={"name": "Cross"},
                   headers={"X-CSRF-Token": other.csrf})
    expect_error(r, 403, "csrf_failed")


def test_change_own_password_revokes_other_sessions(server, admin):
    other = server.login()
    r = admin.post(server.api("/me/password"),
                   json={"current_password": ADMIN_PASSWORD,
                         "new_password": OTHER_PASSWORD})
    assert r.status_code == 204, r.text
    assert admin.get(server.api("/me")).status_code == 200
    expect_error(other.get(server.api("/me")), 401, "unauthenticated")
    expect_error(server.signin("admin", ADMIN_PASSWORD), 401,
                 "invalid_credentials")
    server.login("admin", OTHER_PASSWORD)


def test_change_own_password_checks_current_and_policy(server, admin):
    r = admin.post(server.api("/me/password"),
                   json={"current_password": "Not-The-Password-77",
                         "new_password": OTHER_PASSWORD})
    assert 400 <= r.status_code < 500, r.text
    error_of(r)
    r = admin.post(server.api("/me/password"),
                   json={"current_password": ADMIN_PASSWORD,
                         "new_password": "123456"})
    body = expect_error(r, 400, "weak_password")
    assert body.get("reason") == "too_short", body
    server.login("admin", ADMIN_PASSWORD)


def test_last_signin_at_is_set(server):
    s = server.login()
    s2 = server.login()
    assert s2.user["last_signin_at"], s2.user
    assert s.get(server.api("/me")).status_code == 200
    assert s.headers["User-Agent"] == USER_AGENT


def test_a_write_by_another_process_holds_from_the_next_request(server, admin):
    # Repeated checks of one session are remembered per database
    # connection; a commit by another process (here `gatehouse db sql`)
    # must end that at once: a disabled user, then a revoked session.
    for _ in range(5):
        r = admin.get(server.api("/me"))
        assert r.status_code == 200, r.text
    sid = r.json()["session"]["id"]
    server.query("UPDATE users SET state = 'disabled' WHERE id = ?",
                 (admin.user["id"],))
    expect_error(admin.get(server.api("/me")), 401, "unauthenticated")
    server.query("UPDATE users SET state = 'active' WHERE id = ?",
                 (admin.user["id"],))
    for _ in range(5):
        r = admin.get(server.api("/me"))
        assert r.status_code == 200, r.text
    server.query("UPDATE sessions SET revoked_at = ? WHERE id = ?",
                 (int(time.time() * 1000), sid))
    expect_error(admin.get(server.api("/me")), 401, "unauthenticated")


def test_me_attributes_follow_a_write_by_another_process(server, admin):
    # /me skips the attribute query when the session check found none;
    # a value added behind the server's back shows on the next request.
    r = admin.get(server.api("/me"))
    assert r.status_code == 200 and r.json()["user"]["attributes"] == {}
    attr = "a0" * 16
    server.query("INSERT INTO attribute_definitions (id, name, type, "
                 "required, is_unique, classification, encrypted, "
                 "created_at, updated_at) "
                 "VALUES (?, 'team', 'string', 0, 0, 'personal', 0, 1, 1)",
                 (attr,))
    server.query("INSERT INTO user_attributes (user_id, attribute_id, "
                 "value_text, updated_at) VALUES (?, ?, 'blue', 1)",
                 (admin.user["id"], attr))
    r = admin.get(server.api("/me"))
    assert r.status_code == 200, r.text
    assert r.json()["user"]["attributes"] == {"team": "blue"}
