"""Listing and revoking sessions: own (/me/sessions) and by an admin
(/users/{id}/sessions); idle and absolute timeouts."""

from datetime import datetime

import requests

from conftest import USER_AGENT, USER_PASSWORD, expect_error


def rfc3339(s):
    assert isinstance(s, str) and s.endswith("Z"), s
    assert "." in s, f"no milliseconds: {s}"
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_list_own_sessions(server):
    a = server.login()
    b = server.login()
    r = a.get(server.api("/me/sessions"))
    assert r.status_code == 200, r.text
    sessions = r.json()["sessions"]
    assert len(sessions) == 2, sessions
    for s in sessions:
        for k in ("id", "created_at", "last_seen_at", "expires_at",
                  "source_ip", "user_agent", "current"):
            assert k in s, f"{k} missing: {s}"
        assert s["source_ip"] == "127.0.0.1"
        assert s["user_agent"] == USER_AGENT
        created, expires = rfc3339(s["created_at"]), rfc3339(s["expires_at"])
        rfc3339(s["last_seen_at"])
        # session_lifetime_s defaults to 12 h; docs/api.md does not say
        # whether expires_at also reflects the 30 min idle timeout.
        left = (expires - created).total_seconds()
        assert abs(left - 43200) < 5 or abs(left - 1800) < 5, s
    assert sorted(s["current"] for s in sessions) == [False, True]
    # No secret in the listing.
    assert a.cookie not in r.text and b.cookie not in r.text
    # The current flag follows the caller.
    cur_a = next(s["id"] for s in sessions if s["current"])
    cur_b = next(s["id"] for s in b.get(server.api("/me/sessions")).json()["sessions"]
                 if s["current"])
    assert cur_a != cur_b


def test_revoke_own_other_session(server):
    a = server.login()
    b = server.login()
    sessions = a.get(server.api("/me/sessions")).json()["sessions"]
    other = next(s["id"] for s in sessions if not s["current"])
    r = a.delete(server.api(f"/me/sessions/{other}"))
    assert r.status_code == 204, r.text
    expect_error(b.get(server.api("/me")), 401, "unauthenticated")
    assert a.get(server.api("/me")).status_code == 200
    sessions = a.get(server.api("/me/sessions")).json()["sessions"]
    assert [s["id"] for s in sessions] != [] and other not in [s["id"] for s in sessions]
    # Revoking it again: it is gone.
    expect_error(a.delete(server.api(f"/me/sessions/{other}")), 404, "not_found")
    expect_error(a.delete(server.api("/me/sessions/" + "0" * 32)), 404,
                 "not_found")


def test_revoking_own_sessions_needs_csrf(server):
    a = server.login()
    b = server.login()
    other = next(s["id"] for s in a.get(server.api("/me/sessions")).json()["sessions"]
                 if not s["current"])
    bare = server.new_session()
    bare.cookies.set("gh_session", a.cookie)
    expect_error(bare.delete(server.api(f"/me/sessions/{other}")), 403,
                 "csrf_failed")
    assert b.get(server.api("/me")).status_code == 200


def test_a_user_cannot_revoke_someone_elses_session(server, admin):
    server.create_user(admin, "bob", USER_PASSWORD)
    bob = server.login("bob", USER_PASSWORD)
    admin_sid = next(s["id"] for s in admin.get(server.api("/me/sessions")).json()["sessions"]
                     if s["current"])
    expect_error(bob.delete(server.api(f"/me/sessions/{admin_sid}")), 404,
                 "not_found")
    assert admin.get(server.api("/me")).status_code == 200


def test_admin_lists_and_revokes_a_users_sessions(server, admin):
    bob_user = server.create_user(admin, "bob", USER_PASSWORD)
    b1 = server.login("bob", USER_PASSWORD)
    b2 = server.login("bob", USER_PASSWORD)
    r = admin.get(server.api(f"/users/{bob_user['id']}/sessions"))
    assert r.status_code == 200, r.text
    assert len(r.json()["sessions"]) == 2
    assert b1.cookie not in r.text
    # A member cannot do this.
    expect_error(b1.delete(server.api(f"/users/{admin.user['id']}/sessions")),
                 403, "permission_denied")
    r = admin.delete(server.api(f"/users/{bob_user['id']}/sessions"))
    assert r.status_code == 200, r.text
    assert r.json() == {"revoked": 2}
    for s in (b1, b2):
        expect_error(s.get(server.api("/me")), 401, "unauthenticated")
    assert admin.get(server.api("/me")).status_code == 200
    r = admin.delete(server.api(f"/users/{bob_user['id']}/sessions"))
    assert r.json() == {"revoked": 0}
    expect_error(admin.get(server.api("/users/" + "0" * 32 + "/sessions")),
                 404, "not_found")


def test_idle_and_absolute_timeouts(server):
    """The timeouts have a floor of minutes, so age the sessions in the
    database instead of waiting: whatever the time unit, moving a time back
    by the whole lifetime (expires_at - created_at) puts it past both."""
    idle = server.login()
    old = server.login()
    fresh = server.login()
    ids = {}
    for name, s in (("idle", idle), ("old", old), ("fresh", fresh)):
        ids[name] = s.signin_body["session"]["id"]
    assert len(set(ids.values())) == 3
    # idle: not used for longer than any idle timeout.
    rows = server.query("UPDATE sessions SET last_seen_at = last_seen_at - "
                        "(expires_at - created_at) WHERE id = ? RETURNING id",
                        (ids["idle"],))
    assert rows, "session id from the API is not the sessions.id column"
    # old: used a moment ago, but past its absolute lifetime.
    server.query("UPDATE sessions SET created_at = created_at - "
                 "(expires_at - created_at), expires_at = created_at - 1 "
                 "WHERE id = ?", (ids["old"],))
    expect_error(idle.get(server.api("/me")), 401, "unauthenticated")
    expect_error(old.get(server.api("/me")), 401, "unauthenticated")
    assert fresh.get(server.api("/me")).status_code == 200
    listed = {s["id"] for s in fresh.get(server.api("/me/sessions")).json()["sessions"]}
    assert listed == {ids["fresh"]}, listed


def test_session_timeouts_have_a_floor(server):
    r = server.cli("serve", "--listen", "127.0.0.1:0", "--dev", check=False,
                   env={"GATEHOUSE_SESSION_IDLE_TIMEOUT_S": "0"}, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "session_idle_timeout_s" in r.stderr.lower()


def test_session_cookie_is_not_accepted_in_a_query_or_header_substitute(server, admin):
    r = requests.get(server.api("/me") + f"?gh_session={admin.cookie}", timeout=10)
    expect_error(r, 401, "unauthenticated")
    r = requests.get(server.api("/me"), timeout=10,
                     headers={"Authorization": f"Bearer {admin.cookie}"})
    expect_error(r, 401, "unauthenticated")
