"""GET /me writes its body directly (src/api/account.c, gh_json_put_* in
src/core/json.c) instead of through a jansson tree: its answer must stay
the one the jansson-built objects give (same keys in the same order, same
values, same escapes), and a session refused anywhere must be refused by
/me on the very next request."""

import json

import requests

from conftest import USER_PASSWORD, expect_error

# Quotes, a backslash, a slash, HTML, non-ASCII and a 4-byte character.
TRICKY = 'Zoë "Q" \\ back/slash </script> \u2028 \U0001F511'
TRICKY_UA = 'agent "quoted" \\ é'


def tricky_user(server, admin):
    r = admin.post(server.api("/attributes"),
                   json={"name": "team", "type": "string"}, timeout=30)
    assert r.status_code == 201, r.text
    u = server.create_user(admin, "zoe", password=USER_PASSWORD,
                           display_name=TRICKY,
                           email="zoe@example.com",
                           attributes={"team": 'a "b" \\ c\nd'})
    s = server.new_session()
    s.headers["User-Agent"] = TRICKY_UA.encode("utf-8")
    r = server.signin("zoe", USER_PASSWORD, session=s)
    assert r.status_code == 200, r.text
    return u, s, r


def test_me_matches_the_jansson_objects_key_for_key(server, admin):
    u, s, signin = tricky_user(server, admin)
    r = s.get(server.api("/me"), timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    me = r.json()
    assert list(me) == ["user", "session", "csrf_token"]
    # The user as the admin API (jansson) writes it, plus attributes.
    ref = admin.get(server.api(f"/users/{u['id']}"), timeout=30).json()
    user = me["user"]
    assert list(user) == ["id", "username", "email", "display_name",
                          "state", "role", "created_at", "updated_at",
                          "last_signin_at", "password_changed_at",
                          "attributes"]
    for k in user:
        if k != "last_signin_at":
            assert user[k] == ref[k], k
    assert user["display_name"] == TRICKY
    assert user["attributes"] == {"team": 'a "b" \\ c\nd'}
    # The session and CSRF token as the sign-in answer (jansson) gave them.
    ref_s = signin.json()
    assert list(me["session"]) == list(ref_s["session"])
    assert me["session"] == ref_s["session"]
    assert me["session"]["user_agent"] == TRICKY_UA
    assert me["csrf_token"] == ref_s["csrf_token"]
    # Escapes byte for byte as jansson writes them: UTF-8 as is, the
    # slash and U+2028 unescaped, quote and backslash escaped.
    raw = r.content.decode("utf-8")
    assert '"display_name":' + json.dumps(TRICKY, ensure_ascii=False) in raw
    assert '"email":"zoe@example.com"' in raw
    ref_raw = admin.get(server.api(f"/users/{u['id']}"),
                        timeout=30).content.decode("utf-8")
    assert '"display_name":' + json.dumps(TRICKY, ensure_ascii=False) \
        in ref_raw


def test_me_without_email_says_null(server, admin):
    r = admin.get(server.api("/me"), timeout=30)
    assert r.status_code == 200
    assert '"email":null' in r.text
    assert r.json()["user"]["email"] is None


def test_me_refuses_at_once_what_was_revoked(server, admin):
    u, s, _ = tricky_user(server, admin)
    assert s.get(server.api("/me"), timeout=30).status_code == 200
    # Disabled user: refused on the next request.
    r = admin.patch(server.api(f"/users/{u['id']}"),
                    json={"state": "disabled"}, timeout=30)
    assert r.status_code == 200, r.text
    expect_error(s.get(server.api("/me"), timeout=30), 401,
                 "unauthenticated")
    r = admin.patch(server.api(f"/users/{u['id']}"),
                    json={"state": "active"}, timeout=30)
    assert r.status_code == 200, r.text
    # Signed out: refused on the next request.
    me = server.login()
    assert me.get(server.api("/me"), timeout=30).status_code == 200
    assert me.delete(server.api("/session"), timeout=30).status_code == 204
    r = requests.get(server.api("/me"), timeout=30,
                     cookies={"gh_session": me.cookie})
    expect_error(r, 401, "unauthenticated")
