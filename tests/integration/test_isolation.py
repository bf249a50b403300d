"""Tenant isolation: org B's admin cannot reach org A's users, and A's
credentials mean nothing under /o/B."""

import requests

from conftest import OTHER_PASSWORD, USER_PASSWORD, expect_error


def two_orgs(server, admin):
    server.cli("org", "create", "beta", "--name", "Beta Ltd")
    server.cli("user", "add", "--org", "beta", "betaadmin", "--role", "owner",
               env={"GATEHOUSE_USER_PASSWORD": OTHER_PASSWORD})
    alice = server.create_user(admin, "alice", USER_PASSWORD,
                               email="alice@acme.example")
    beta = server.login("betaadmin", OTHER_PASSWORD, org="beta")
    return alice, beta


def test_b_admin_cannot_see_or_touch_a_users(server, admin):
    alice, beta = two_orgs(server, admin)
    r = beta.get(server.api("/users?limit=200", "beta"))
    assert r.status_code == 200, r.text
    assert [u["username"] for u in r.json()["users"]] == ["betaadmin"]
    r = beta.get(server.api("/users?q=alice", "beta"))
    assert r.json()["users"] == []
    aid = alice["id"]
    expect_error(beta.get(server.api(f"/users/{aid}", "beta")), 404, "not_found")
    expect_error(beta.patch(server.api(f"/users/{aid}", "beta"),
                            json={"display_name": "pwned"}), 404, "not_found")
    expect_error(beta.post(server.api(f"/users/{aid}/disable", "beta")), 404,
                 "not_found")
    expect_error(beta.get(server.api(f"/users/{aid}/sessions", "beta")), 404,
                 "not_found")
    expect_error(beta.delete(server.api(f"/users/{aid}/sessions", "beta")), 404,
                 "not_found")
    expect_error(beta.delete(server.api(f"/users/{aid}", "beta")), 404, "not_found")
    # Alice is untouched.
    a = admin.get(server.api(f"/users/{aid}")).json()
    assert a["state"] == "active" and a["display_name"] != "pwned"
    # A's audit is not in B's.
    r = beta.get(server.api("/audit?limit=200", "beta"))
    assert aid not in r.text
    # Different files on disk.
    assert server.tenant_db("acme") != server.tenant_db("beta")
    assert server.query("SELECT id FROM users WHERE id = ?", (aid,), slug="beta") == []


def test_a_session_cookie_does_not_work_on_b(server, admin):
    _, beta = two_orgs(server, admin)
    cookie = {"Cookie": f"gh_session={admin.cookie}"}
    expect_error(requests.get(server.api("/me", "beta"), headers=cookie, timeout=10),
                 401, "unauthenticated")
    r = requests.get(server.api("/users", "beta"), timeout=10,
                     headers={**cookie, "X-CSRF-Token": admin.csrf})
    expect_error(r, 401, "unauthenticated")
    r = requests.post(server.api("/users", "beta"), json={"username": "intruder"},
                      headers={**cookie, "X-CSRF-Token": admin.csrf}, timeout=10)
    assert r.status_code in (401, 403), r.text
    # And the other way round.
    r = requests.get(server.api("/me"), timeout=10,
                     headers={"Cookie": f"gh_session={beta.cookie}"})
    expect_error(r, 401, "unauthenticated")
    # The browser would not even send it: the cookie is scoped to /o/acme/.
    s = server.new_session()
    s.cookies.update(admin.cookies)
    expect_error(s.get(server.api("/me", "beta")), 401, "unauthenticated")


def test_credentials_are_per_org(server, admin):
    two_orgs(server, admin)
    expect_error(server.signin("alice", USER_PASSWORD, org="beta"), 401,
                 "invalid_credentials")
    expect_error(server.signin("betaadmin", OTHER_PASSWORD), 401,
                 "invalid_credentials")
    # The same username may exist in both orgs, independently.
    server.create_user(admin, "shared", USER_PASSWORD)
    beta = server.login("betaadmin", OTHER_PASSWORD, org="beta")
    r = beta.post(server.api("/users", "beta"),
                  json={"username": "shared", "password": OTHER_PASSWORD})
    assert r.status_code == 201, r.text
    expect_error(server.signin("shared", OTHER_PASSWORD), 401, "invalid_credentials")
    assert server.signin("shared", OTHER_PASSWORD, org="beta").status_code == 200
    assert server.signin("shared", USER_PASSWORD).status_code == 200


def test_sessions_are_listed_per_org(server, admin):
    _, beta = two_orgs(server, admin)
    r = beta.get(server.api("/me/sessions", "beta"))
    assert len(r.json()["sessions"]) == 1
    acme_ids = {s["id"] for s in admin.get(server.api("/me/sessions")).json()["sessions"]}
    for sid in acme_ids:
        expect_error(beta.delete(server.api(f"/me/sessions/{sid}", "beta")), 404,
                     "not_found")
    assert admin.get(server.api("/me")).status_code == 200
