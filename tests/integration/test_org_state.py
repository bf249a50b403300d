"""Organisation and user state: a suspended org refuses sign-in, a
deleted org stops serving, a disabled user's session stops working."""

import sqlite3

import requests

from conftest import ADMIN_PASSWORD, USER_PASSWORD, expect_error


def test_suspended_org_refuses_sign_in(server, admin):
    server.cli("org", "suspend", "acme")
    expect_error(server.signin("admin", ADMIN_PASSWORD), 403, "org_suspended")
    expect_error(admin.get(server.api("/me")), 403, "org_suspended")
    expect_error(admin.get(server.api("/users")), 403, "org_suspended")
    rows = server.query("SELECT result, reason FROM signin_events ORDER BY seq")
    assert rows[-1] == {"result": "failure", "reason": "org_suspended"}, rows
    # Form sign-in too.
    r = requests.get(server.url("/o/acme/login"), timeout=10)
    assert r.status_code in (200, 403)
    server.cli("org", "activate", "acme")
    assert server.signin("admin", ADMIN_PASSWORD).status_code == 200


def test_deleted_org_stops_serving_at_once(server, admin):
    t = server.create_token(admin, "gone", days=1)
    server.cli("org", "delete", "acme")
    expect_error(server.signin("admin", ADMIN_PASSWORD), 404, "org_not_found")
    expect_error(admin.get(server.api("/me")), 404, "org_not_found")
    expect_error(server.bearer(t["token"]).get(server.api("/users")), 404,
                 "org_not_found")
    assert requests.get(server.url("/o/acme/login"), timeout=10).status_code == 404
    # Data stays until retention ends.
    assert server.tenant_db().exists()


def test_disabled_users_session_stops_working(server, admin):
    u = server.create_user(admin, "olga", USER_PASSWORD)
    s = server.login("olga", USER_PASSWORD)
    assert s.get(server.api("/me")).status_code == 200
    r = admin.post(server.api(f"/users/{u['id']}/disable"))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "disabled"
    expect_error(s.get(server.api("/me")), 401, "unauthenticated")
    r = server.signin("olga", USER_PASSWORD)
    assert r.status_code in (401, 403), r.text
    if r.status_code == 401:
        expect_error(r, 401, "invalid_credentials")
    rows = server.query("SELECT result, reason FROM signin_events "
                        "WHERE username = 'olga' ORDER BY seq")
    assert rows[-1] == {"result": "failure", "reason": "user_disabled"}, rows
    # Enabling again through PATCH state.
    r = admin.patch(server.api(f"/users/{u['id']}"), json={"state": "active"})
    assert r.status_code == 200, r.text
    server.login("olga", USER_PASSWORD)
    # The old session stays dead.
    expect_error(s.get(server.api("/me")), 401, "unauthenticated")


def test_disable_through_patch_state_also_ends_sessions(server, admin):
    u = server.create_user(admin, "pavel", USER_PASSWORD)
    s = server.login("pavel", USER_PASSWORD)
    r = admin.patch(server.api(f"/users/{u['id']}"), json={"state": "disabled"})
    assert r.status_code == 200, r.text
    expect_error(s.get(server.api("/me")), 401, "unauthenticated")


# ---- the in-memory organisation cache (ctx_open) ------------------------------
#
# The server resolves {org} from memory; a change made by the CLI, another
# process, must still hold from the very next request, on every connection
# (each lands on any of the server's threads).

DISCOVERY = "/o/{}/.well-known/openid-configuration"


def _warm(server, slug, n=12):
    """n requests over n fresh connections: every thread has looked the
    organisation up (and cached it) before the change."""
    for _ in range(n):
        r = requests.get(server.url(DISCOVERY.format(slug)), timeout=10)
        assert r.status_code == 200, r.text


def _each_connection(server, slug, status, code=None, n=12):
    for _ in range(n):
        r = requests.get(server.url(DISCOVERY.format(slug)), timeout=10)
        if code is None:
            assert r.status_code == status, r.text
        else:
            expect_error(r, status, code)


def test_cli_suspend_holds_on_the_next_request(server, admin):
    _warm(server, "acme")
    assert admin.get(server.api("/me")).status_code == 200
    server.cli("org", "suspend", "acme")
    # The very next request, then every connection.
    expect_error(admin.get(server.api("/me")), 403, "org_suspended")
    _each_connection(server, "acme", 403, "org_suspended")
    server.cli("org", "activate", "acme")
    assert admin.get(server.api("/me")).status_code == 200
    _each_connection(server, "acme", 200)
    # Suspend and resume again: the cache follows every change.
    server.cli("org", "suspend", "acme")
    _each_connection(server, "acme", 403, "org_suspended")
    server.cli("org", "activate", "acme")
    _each_connection(server, "acme", 200)


def test_cli_delete_holds_on_the_next_request(server, admin):
    _warm(server, "acme")
    server.cli("org", "delete", "acme")
    expect_error(admin.get(server.api("/me")), 404, "org_not_found")
    _each_connection(server, "acme", 404, "org_not_found")


def test_cli_create_serves_at_once_and_rename_shows(server, admin):
    # Unknown first (an unknown slug is not remembered as missing).
    _each_connection(server, "beta", 404, "org_not_found", n=4)
    server.cli("org", "create", "beta", "--name", "Beta")
    _each_connection(server, "beta", 200)
    # A rename through the admin API (the server's own write).
    _warm(server, "acme")
    r = admin.get(server.api("/org"))
    assert r.status_code == 200 and r.json()["name"] != "Renamed Acme", r.text
    r = admin.patch(server.api("/org"), json={"name": "Renamed Acme"})
    assert r.status_code == 200, r.text
    for _ in range(6):
        r = admin.get(server.api("/org"))
        assert r.status_code == 200 and r.json()["name"] == "Renamed Acme", r.text
    # The other organisation is untouched by acme's changes.
    server.cli("org", "suspend", "acme")
    _each_connection(server, "acme", 403, "org_suspended", n=4)
    _each_connection(server, "beta", 200, n=4)


def test_generation_is_bumped_by_every_org_change(server):
    def gen():
        con = sqlite3.connect(str(server.data_dir / "directory.db"))
        try:
            return con.execute("SELECT gen FROM org_generation").fetchone()[0]
        finally:
            con.close()

    g0 = gen()
    server.cli("org", "create", "gamma", "--name", "Gamma")
    g1 = gen()
    server.cli("org", "suspend", "gamma")
    g2 = gen()
    server.cli("org", "activate", "gamma")
    g3 = gen()
    server.cli("org", "delete", "gamma")
    g4 = gen()
    assert g0 < g1 < g2 < g3 < g4, (g0, g1, g2, g3, g4)
