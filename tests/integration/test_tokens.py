"""API tokens: created by an owner or admin, shown once, stored hashed,
Bearer authentication without CSRF, revocable, always expiring."""

from datetime import datetime, timedelta, timezone

import requests

from conftest import USER_PASSWORD, expect_error


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_create_shows_the_token_once(server, admin):
    t = server.create_token(admin, "ci", days=1)
    assert {"id", "name", "token", "expires_at"} <= set(t), t
    assert t["name"] == "ci"
    assert t["token"].startswith("gh_") and len(t["token"]) >= 40, t
    left = ts(t["expires_at"]) - datetime.now(timezone.utc)
    assert timedelta(hours=23) < left <= timedelta(days=1, minutes=1), t
    r = admin.get(server.api("/tokens"))
    assert r.status_code == 200, r.text
    tokens = r.json()["tokens"]
    assert [x["id"] for x in tokens] == [t["id"]]
    assert "token" not in tokens[0]
    assert t["token"] not in r.text and t["token"][3:] not in r.text
    # Stored hashed: the secret is nowhere in the tenant database files.
    db = server.tenant_db()
    for f in (db, db.with_name(db.name + "-wal")):
        if f.exists():
            assert t["token"][3:].encode() not in f.read_bytes(), f


def test_default_expiry_is_90_days_and_range_is_checked(server, admin):
    t = server.create_token(admin, "default")
    left = ts(t["expires_at"]) - datetime.now(timezone.utc)
    assert timedelta(days=89, hours=23) < left <= timedelta(days=90, minutes=1), t
    t = server.create_token(admin, "max", days=366)
    for bad in ({"name": "x", "expires_in_days": 0},
                {"name": "x", "expires_in_days": 367},
                {"name": "x", "expires_in_days": "7"},
                {"name": "x", "expires_in_days": None},
                {"expires_in_days": 5}, {"name": ""}, {"name": 1},
                {"name": "x", "scope": "all"}):
        expect_error(admin.post(server.api("/tokens"), json=bad), 400,
                     "invalid_request")


def test_bearer_token_works_without_csrf(server, admin):
    t = server.create_token(admin, "automation", days=7)
    b = server.bearer(t["token"])
    r = b.get(server.api("/users"))
    assert r.status_code == 200, r.text
    assert r.json()["users"][0]["username"] == "admin"
    u = server.create_user(b, "via-token")
    r = b.get(server.api("/me"))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["user"]["username"] == "admin"
    assert "session" not in me or me["session"] is None
    assert "csrf_token" not in me or me["csrf_token"] is None
    ev = server.query("SELECT * FROM audit_events WHERE action = 'user.create' "
                      "AND target_id = ?", (u["id"],))
    assert len(ev) == 1, ev
    assert ev[0]["actor_type"] == "api_token" and ev[0]["actor_id"] == t["id"], ev


def test_revoked_token_stops_working(server, admin):
    t = server.create_token(admin, "short-lived", days=1)
    b = server.bearer(t["token"])
    assert b.get(server.api("/users")).status_code == 200
    r = admin.delete(server.api(f"/tokens/{t['id']}"))
    assert r.status_code == 204, r.text
    expect_error(b.get(server.api("/users")), 401, "unauthenticated")
    expect_error(admin.delete(server.api(f"/tokens/{t['id']}")), 404, "not_found")
    listed = admin.get(server.api("/tokens")).json()["tokens"]
    assert all(x["id"] != t["id"] or x.get("revoked_at") for x in listed), listed


def test_invalid_and_expired_tokens_are_refused(server, admin):
    t = server.create_token(admin, "soon-expired", days=1)
    tok = t["token"]
    flipped = tok[:-1] + ("A" if tok[-1] != "A" else "B")
    for bad in (flipped, tok[:-1], tok + "A", "gh_", "gh_" + "0" * 64,
                tok.upper() if tok.upper() != tok else tok.lower()):
        expect_error(server.bearer(bad).get(server.api("/users")), 401,
                     "unauthenticated")
    for header in ("Bearer", "Bearer ", "Basic " + tok, f"bearer{tok}",
                   f"Bearer {tok} extra"):
        r = requests.get(server.api("/users"), headers={"Authorization": header},
                         timeout=10)
        expect_error(r, 401, "unauthenticated")
    # Expire it in the database (whatever the time unit, 1 is long past).
    server.query("UPDATE api_tokens SET expires_at = 1 WHERE id = ?", (t["id"],))
    expect_error(server.bearer(tok).get(server.api("/users")), 401,
                 "unauthenticated")


def test_members_cannot_create_tokens_and_member_tokens_obey_the_role(server, admin):
    server.create_user(admin, "mia", USER_PASSWORD)
    m = server.login("mia", USER_PASSWORD)
    expect_error(m.post(server.api("/tokens"), json={"name": "x"}), 403,
                 "permission_denied")


def test_disabled_owner_of_a_token_cannot_use_it(server, admin):
    server.create_user(admin, "nina", USER_PASSWORD, role="admin")
    n = server.login("nina", USER_PASSWORD)
    t = server.create_token(n, "nina-token", days=3)
    b = server.bearer(t["token"])
    assert b.get(server.api("/users")).status_code == 200
    nina_id = n.user["id"]
    r = admin.post(server.api(f"/users/{nina_id}/disable"))
    assert r.status_code == 200 and r.json()["state"] == "disabled", r.text
    expect_error(b.get(server.api("/users")), 401, "unauthenticated")
    expect_error(n.get(server.api("/me")), 401, "unauthenticated")


def test_token_of_one_org_is_refused_by_another(server, admin):
    server.cli("org", "create", "beta")
    t = server.create_token(admin, "acme-only", days=1)
    expect_error(server.bearer(t["token"]).get(server.api("/users", "beta")),
                 401, "unauthenticated")
