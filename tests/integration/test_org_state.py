"""Organisation and user state: a suspended org refuses sign-in, a
deleted org stops serving, a disabled user's session stops working."""

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
