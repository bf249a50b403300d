"""The admin API: organisation, users (CRUD, paging, filters), password
policy and weak passwords, roles (docs/api.md, Administration)."""

import re

import pytest
import requests

from conftest import (ADMIN_PASSWORD, OTHER_PASSWORD, USER_PASSWORD,
                      expect_error)

USER_KEYS = {"id", "username", "email", "display_name", "state", "role",
             "created_at", "updated_at", "last_signin_at",
             "password_changed_at"}


def test_org_get_and_patch(server, admin):
    r = admin.get(server.api("/org"))
    assert r.status_code == 200, r.text
    org = r.json()
    assert {"id", "slug", "name", "state", "region", "created_at"} <= set(org)
    assert org["slug"] == "acme" and org["state"] == "active"
    assert org["region"] == "eu"
    assert org["id"] == server.org_row()["id"]
    r = admin.patch(server.api("/org"), json={"name": "Acme Holdings"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Acme Holdings"
    assert admin.get(server.api("/org")).json()["name"] == "Acme Holdings"
    assert server.org_row()["name"] == "Acme Holdings"
    for bad in ({"name": ""}, {"name": 7}, {"slug": "evil"}):
        expect_error(admin.patch(server.api("/org"), json=bad), 400,
                     "invalid_request")


def test_create_and_read_a_user(server, admin):
    u = server.create_user(admin, "alice", USER_PASSWORD,
                           email="alice@example.com", display_name="Alice")
    assert USER_KEYS <= set(u), u
    assert "password_hash" not in u and "password" not in u
    assert re.fullmatch(r"[0-9a-f]{32}", u["id"]), u["id"]
    assert u["username"] == "alice" and u["role"] == "member"
    assert u["state"] == "active" and u["last_signin_at"] is None
    assert u["email"] == "alice@example.com" and u["display_name"] == "Alice"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", u["created_at"])
    r = admin.get(server.api(f"/users/{u['id']}"))
    assert r.status_code == 200 and r.json() == u, r.text
    # Signs in with the password given.
    server.login("alice", USER_PASSWORD)
    row = server.query("SELECT password_hash FROM users WHERE id = ?", (u["id"],))[0]
    assert row["password_hash"].startswith("$argon2id$"), row
    assert USER_PASSWORD not in row["password_hash"]


def test_user_input_validation(server, admin):
    bad = [
        {"username": ""},
        {"username": "x" * 65},
        {"username": "bad name"},
        {"username": "semi;colon"},
        {"username": "ok", "role": "superuser"},
        {"username": "ok", "email": "not-an-email"},
        {"username": "ok", "email": 5},
        {"username": "ok", "unknown_field": 1},
        {"username": "ok", "password": USER_PASSWORD,
         "password_hash": "$2b$04$" + "a" * 53},
        {"username": "ok", "password_hash": "plaintext"},
        {"email": "a@example.com"},
        {"username": ["ok"]},
    ]
    for body in bad:
        r = admin.post(server.api("/users"), json=body)
        expect_error(r, 400, "invalid_request")
    names = [u["username"] for u in admin.get(server.api("/users")).json()["users"]]
    assert names == ["admin"], names
    # The longest allowed name and every allowed character.
    server.create_user(admin, "a" * 64)
    server.create_user(admin, "Dot.Under_At@Plus+Dash-9")


def test_duplicate_username_ignoring_case_is_409(server, admin):
    server.create_user(admin, "Carol", USER_PASSWORD)
    for dup in ("carol", "CAROL", "Carol", "admin", "ADMIN"):
        r = admin.post(server.api("/users"),
                       json={"username": dup, "password": USER_PASSWORD})
        expect_error(r, 409, "username_taken")
    rows = server.query("SELECT username FROM users ORDER BY username")
    assert [r["username"] for r in rows] == sorted(["Carol", "admin"]), rows
    # The original spelling is kept and sign-in ignores case? Only the
    # uniqueness rule is documented; sign-in with the stored spelling works.
    server.login("Carol", USER_PASSWORD)


def test_paging_returns_every_user_exactly_once(server, admin):
    made = {server.create_user(admin, f"page{i:02d}")["id"] for i in range(11)}
    made.add(admin.user["id"])
    seen = []
    url = server.api("/users?limit=4")
    pages = 0
    while True:
        r = admin.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["users"]) <= 4
        seen += [u["id"] for u in body["users"]]
        pages += 1
        assert pages < 10, "paging does not end"
        if body["next_cursor"] is None:
            break
        url = server.api(f"/users?limit=4&cursor={body['next_cursor']}")
    assert len(seen) == len(set(seen)), "duplicates across pages"
    assert set(seen) == made
    assert pages == 3
    # Default limit 50 returns them all with next_cursor null.
    body = admin.get(server.api("/users")).json()
    assert len(body["users"]) == 12 and body["next_cursor"] is None


def test_paging_is_stable_while_users_are_added(server, admin):
    for i in range(6):
        server.create_user(admin, f"early{i}")
    before = {u["id"] for u in admin.get(server.api("/users?limit=200")).json()["users"]}
    first = admin.get(server.api("/users?limit=3")).json()
    server.create_user(admin, "late-arrival")
    seen = [u["id"] for u in first["users"]]
    cursor = first["next_cursor"]
    while cursor:
        body = admin.get(server.api(f"/users?limit=3&cursor={cursor}")).json()
        seen += [u["id"] for u in body["users"]]
        cursor = body["next_cursor"]
    assert len(seen) == len(set(seen)), "a user was listed twice"
    assert before <= set(seen), "a user that existed all along was skipped"


def test_list_parameters_are_validated(server, admin):
    for q in ("limit=0", "limit=201", "limit=abc", "limit=-1", "limit=1e3",
              "cursor=not-a-cursor", "state=sleeping",
              "role=king"):
        expect_error(admin.get(server.api(f"/users?{q}")), 400,
                     "invalid_request")
    assert admin.get(server.api("/users?limit=200")).status_code == 200
    assert admin.get(server.api("/users?limit=1")).status_code == 200


def test_filters_q_state_role(server, admin):
    alice = server.create_user(admin, "alice", email="alice@wonder.example")
    bob = server.create_user(admin, "bob", display_name="Bobby Tables",
                             email="b@example.com")
    server.create_user(admin, "carol", email="carol@example.com", role="admin")

    def names(q):
        r = admin.get(server.api(f"/users?{q}"))
        assert r.status_code == 200, r.text
        return sorted(u["username"] for u in r.json()["users"])

    assert names("q=alic") == ["alice"]
    assert names("q=wonder") == ["alice"]  # e-mail
    assert names("q=Tables") == ["bob"]  # display name
    assert names("q=zzz") == []
    assert names("role=admin") == ["carol"]
    assert names("role=owner") == ["admin"]
    r = admin.post(server.api(f"/users/{bob['id']}/disable"))
    assert r.status_code == 200 and r.json()["state"] == "disabled", r.text
    assert names("state=disabled") == ["bob"]
    assert "bob" not in names("state=active")
    assert names("q=wonder&role=member") == ["alice"]
    assert names("q=wonder&role=admin") == []
    # q with SQL wildcards is a literal substring.
    assert names("q=%25") == []
    assert names("q=_") == []
    assert alice


def test_update_user(server, admin):
    u = server.create_user(admin, "dave", USER_PASSWORD, email="d@example.com")
    r = admin.patch(server.api(f"/users/{u['id']}"),
                    json={"email": "dave@example.com", "display_name": "Dave",
                          "role": "admin"})
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["email"] == "dave@example.com" and v["display_name"] == "Dave"
    assert v["role"] == "admin" and v["updated_at"] >= u["updated_at"]
    assert admin.get(server.api(f"/users/{u['id']}")).json() == v
    # Password change through PATCH, policy enforced.
    body = expect_error(admin.patch(server.api(f"/users/{u['id']}"),
                                    json={"password": "123456"}),
                        400, "weak_password")
    assert body["reason"] == "too_short"
    r = admin.patch(server.api(f"/users/{u['id']}"),
                    json={"password": OTHER_PASSWORD})
    assert r.status_code == 200, r.text
    server.login("dave", OTHER_PASSWORD)
    for bad in ({"username": "renamed"}, {"role": "god"}, {"state": "zombie"},
                {"email": 1}, {"nope": True}):
        expect_error(admin.patch(server.api(f"/users/{u['id']}"), json=bad),
                     400, "invalid_request")
    expect_error(admin.patch(server.api("/users/" + "f" * 32),
                             json={"display_name": "x"}), 404, "not_found")


def test_delete_user(server, admin):
    u = server.create_user(admin, "erin", USER_PASSWORD)
    s = server.login("erin", USER_PASSWORD)
    r = admin.delete(server.api(f"/users/{u['id']}"))
    assert r.status_code == 204, r.text
    expect_error(admin.get(server.api(f"/users/{u['id']}")), 404, "not_found")
    expect_error(admin.delete(server.api(f"/users/{u['id']}")), 404, "not_found")
    expect_error(s.get(server.api("/me")), 401, "unauthenticated")
    expect_error(server.signin("erin", USER_PASSWORD), 401, "invalid_credentials")
    # The name is free again.
    server.create_user(admin, "erin")


def test_unknown_user_ids(server, admin):
    expect_error(admin.get(server.api("/users/" + "0" * 32)), 404, "not_found")
    r = admin.get(server.api("/users/not-an-id"))
    assert r.status_code in (400, 404), r.text
    assert r.json()["error"] in ("not_found", "invalid_request", "invalid_path")


def test_last_owner_cannot_be_removed_demoted_or_disabled(server, admin):
    me = admin.user["id"]
    expect_error(admin.patch(server.api(f"/users/{me}"), json={"role": "admin"}),
                 409, "last_owner")
    expect_error(admin.patch(server.api(f"/users/{me}"), json={"state": "disabled"}),
                 409, "last_owner")
    expect_error(admin.post(server.api(f"/users/{me}/disable")), 409, "last_owner")
    expect_error(admin.delete(server.api(f"/users/{me}")), 409, "last_owner")
    assert admin.get(server.api("/me")).json()["user"]["role"] == "owner"
    # With a second owner, the first may step down.
    server.create_user(admin, "owner2", USER_PASSWORD, role="owner")
    r = admin.patch(server.api(f"/users/{me}"), json={"role": "admin"})
    assert r.status_code == 200, r.text


# ---- weak passwords and the policy -------------------------------------------

def weak(server, admin, username, password):
    r = admin.post(server.api("/users"),
                   json={"username": username, "password": password})
    body = expect_error(r, 400, "weak_password")
    assert isinstance(body.get("reason"), str) and body["reason"], body
    assert password not in body["message"], "password echoed in the message"
    assert not server.query("SELECT id FROM users WHERE username_key = ?",
                            (username.lower(),))
    return body


def test_weak_passwords_are_refused_with_the_reason(server, admin):
    assert weak(server, admin, "frank", "123456")["reason"] == "too_short"
    # Under the default policy "password1" may also be too short; the order
    # of the rules is not documented, so check "common" with min_length 8.
    assert weak(server, admin, "frank", "password1")["reason"] in ("too_short", "common")
    r = admin.patch(server.api("/password-policy"), json={"min_length": 8})
    assert r.status_code == 200, r.text
    assert weak(server, admin, "frank", "password1")["reason"] == "common"
    assert weak(server, admin, "frank", "Password123")["reason"] == "common"
    body = weak(server, admin, "quentin.harbourmaster", "quentin.harbourmaster")
    assert body["reason"] == "contains_username", body
    body = weak(server, admin, "quentin.harbourmaster",
                "Quentin.Harbourmaster2026!")
    assert body["reason"] == "contains_username", body


def test_org_name_as_password_is_refused(server, admin):
    r = admin.patch(server.api("/org"), json={"name": "Zephyrine Logistics"})
    assert r.status_code == 200, r.text
    body = weak(server, admin, "grace", "Zephyrine Logistics")
    # docs/api.md lists too_short, common, contains_username, "…": the code
    # for the organisation's name is not fixed. It must not pretend to be
    # one of the other rules, and the message must say why.
    assert body["reason"] not in ("too_short", "common", "contains_username"), body
    assert re.search(r"org", body["message"], re.I), body


def test_password_policy_get_patch_and_enforce(server, admin):
    r = admin.get(server.api("/password-policy"))
    assert r.status_code == 200, r.text
    pol = r.json()
    assert set(pol) >= {"min_length", "min_classes", "min_score",
                        "reject_common", "reject_context"}, pol
    assert pol["min_length"] >= 8 and pol["reject_common"] is True
    assert pol["reject_context"] is True

    r = admin.patch(server.api("/password-policy"), json={"min_length": 30})
    assert r.status_code == 200, r.text
    assert r.json()["min_length"] == 30
    assert admin.get(server.api("/password-policy")).json()["min_length"] == 30
    body = weak(server, admin, "heidi", USER_PASSWORD)  # 28 characters
    assert body["reason"] == "too_short", body
    server.create_user(admin, "heidi", USER_PASSWORD + "-Extra")

    r = admin.patch(server.api("/password-policy"),
                    json={"min_length": 8, "min_classes": 4})
    assert r.status_code == 200, r.text
    body = weak(server, admin, "ivan", "lowercaseonlypassphrase")
    assert body["reason"] != "too_short", body
    server.create_user(admin, "ivan", "Plum-Vortex-Quill-82!")

    for bad in ({"min_length": -1}, {"min_length": "10"},
                {"min_classes": 5}, {"min_score": 101}, {"reject_common": "yes"},
                {"max_length": 10}):
        expect_error(admin.patch(server.api("/password-policy"), json=bad),
                     400, "invalid_request")
    assert admin.get(server.api("/password-policy")).json()["min_classes"] == 4


# ---- roles -------------------------------------------------------------------

def test_members_get_403_on_the_admin_api(server, admin):
    u = server.create_user(admin, "judy", USER_PASSWORD)
    m = server.login("judy", USER_PASSWORD)
    calls = [
        ("get", "/org", None), ("patch", "/org", {"name": "x"}),
        ("get", "/password-policy", None),
        ("patch", "/password-policy", {"min_length": 8}),
        ("get", "/users", None), ("post", "/users", {"username": "evil"}),
        ("get", f"/users/{u['id']}", None),
        ("patch", f"/users/{u['id']}", {"role": "owner"}),
        ("post", f"/users/{admin.user['id']}/disable", None),
        ("delete", f"/users/{admin.user['id']}", None),
        ("get", f"/users/{admin.user['id']}/sessions", None),
        ("delete", f"/users/{admin.user['id']}/sessions", None),
        ("post", "/tokens", {"name": "x"}), ("get", "/tokens", None),
        ("get", "/audit", None), ("get", "/signins", None),
    ]
    for method, path, body in calls:
        r = getattr(m, method)(server.api(path), json=body)
        expect_error(r, 403, "permission_denied")
    assert admin.get(server.api(f"/users/{u['id']}")).json()["role"] == "member"
    assert m.get(server.api("/me")).status_code == 200
    assert m.get(server.api("/me/sessions")).status_code == 200
    names = [x["username"] for x in admin.get(server.api("/users")).json()["users"]]
    assert "evil" not in names


def test_admins_may_use_the_admin_api(server, admin):
    server.create_user(admin, "ken", USER_PASSWORD, role="admin")
    k = server.login("ken", USER_PASSWORD)
    assert k.get(server.api("/users")).status_code == 200
    server.create_user(k, "created-by-admin")
    assert k.get(server.api("/audit")).status_code == 200


@pytest.mark.parametrize("path", ["/users", "/org", "/password-policy",
                                  "/tokens", "/audit", "/signins"])
def test_admin_api_without_credentials_is_401(server, path):
    expect_error(requests.get(server.api(path), timeout=10), 401,
                 "unauthenticated")


def test_admin_signs_in_with_init_password(server):
    # Guard for the rest of the file: the fixture's password is the one init got.
    assert server.signin("admin", ADMIN_PASSWORD).status_code == 200
