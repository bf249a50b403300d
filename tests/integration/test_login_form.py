"""The HTML sign-in form, the account page and logout (docs/api.md, Sign-in
and the account)."""

import html
import re

import requests

from conftest import ADMIN_PASSWORD, cookie_attrs, set_cookies


def form_csrf(text):
    """The value of the csrf_token input in an HTML page."""
    for tag in re.findall(r"<input\b[^>]*>", text, re.I):
        if re.search(r"""name\s*=\s*["']?csrf_token\b""", tag, re.I):
            m = re.search(r"""value\s*=\s*["']([^"']*)["']""", tag, re.I)
            assert m, f"csrf_token input without a value: {tag}"
            return html.unescape(m.group(1))
    raise AssertionError(f"no csrf_token field in: {text[:2000]}")


def get_form(server, s):
    r = s.get(server.url("/o/acme/login"), allow_redirects=False)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Content-Type"].startswith("text/html"), r.headers
    return r, form_csrf(r.text)


def post_login(server, s, username, password, csrf):
    data = {"username": username, "password": password}
    if csrf is not None:
        data["csrf_token"] = csrf
    return s.post(server.url("/o/acme/login"), data=data,
                  allow_redirects=False)


def has_session_cookie(resp):
    for h in set_cookies(resp):
        name, value, attrs = cookie_attrs(h)
        if name == "gh_session" and value and attrs.get("max-age") != "0":
            return True
    return False


def test_login_form_has_the_fields(server):
    s = server.new_session()
    r, csrf = get_form(server, s)
    assert csrf
    assert re.search(r"<form\b[^>]*method\s*=\s*[\"']?post", r.text, re.I)
    assert re.search(r"name\s*=\s*[\"']?username", r.text, re.I)
    assert re.search(r"type\s*=\s*[\"']?password", r.text, re.I)
    # Accessible forms: each input has a label.
    assert "<label" in r.text.lower()


def test_form_sign_in_redirects_to_the_account_page(server):
    s = server.new_session()
    _, csrf = get_form(server, s)
    r = post_login(server, s, "admin", ADMIN_PASSWORD, csrf)
    assert r.status_code == 303, (r.status_code, r.text[:500])
    assert r.headers["Location"].endswith("/o/acme/account"), r.headers["Location"]
    assert has_session_cookie(r), set_cookies(r)
    for h in set_cookies(r):
        name, _, attrs = cookie_attrs(h)
        if name == "gh_session":
            assert "httponly" in attrs and attrs.get("path") == "/o/acme/"
            assert attrs.get("samesite", "").lower() == "lax"
    r = s.get(server.url("/o/acme/account"), allow_redirects=False)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Content-Type"].startswith("text/html")
    assert "admin" in r.text
    # The same session works on the JSON API.
    assert s.get(server.api("/me")).json()["user"]["username"] == "admin"
    # And the sign-in was recorded.
    rows = server.query("SELECT * FROM signin_events WHERE result = 'success'")
    assert rows, "form sign-in not recorded"


def test_form_bad_password_shows_the_form_with_an_error(server):
    s = server.new_session()
    _, csrf = get_form(server, s)
    r = post_login(server, s, "admin", "Wrong-Password-1234!", csrf)
    assert r.status_code in (200, 401), (r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith("text/html")
    assert not has_session_cookie(r)
    form_csrf(r.text)  # the form again
    assert "Wrong-Password-1234!" not in r.text  # never echoed
    # Same page for an unknown user.
    r2 = post_login(server, s, "nobody", "Wrong-Password-1234!", form_csrf(r.text))
    assert r2.status_code == r.status_code
    assert not has_session_cookie(r2)
    rows = server.query("SELECT * FROM signin_events WHERE result = 'failure'")
    assert len(rows) == 2, rows


def test_form_sign_in_without_csrf_token_is_refused(server):
    s = server.new_session()
    get_form(server, s)
    r = post_login(server, s, "admin", ADMIN_PASSWORD, None)
    assert r.status_code != 303, "signed in without a CSRF token"
    assert not has_session_cookie(r)
    r = post_login(server, s, "admin", ADMIN_PASSWORD, "forged-token")
    assert r.status_code != 303, "signed in with a forged CSRF token"
    assert not has_session_cookie(r)


def test_logout_needs_the_csrf_token_and_ends_the_session(server):
    s = server.new_session()
    _, csrf = get_form(server, s)
    assert post_login(server, s, "admin", ADMIN_PASSWORD, csrf).status_code == 303
    cookie = s.cookies.get("gh_session")
    page = s.get(server.url("/o/acme/account")).text
    assert re.search(r"/o/acme/logout", page), "no sign-out form on the account page"
    token = form_csrf(page)

    r = s.post(server.url("/o/acme/logout"), data={}, allow_redirects=False)
    assert r.status_code == 403 or r.status_code >= 400, r.status_code
    assert s.get(server.api("/me")).status_code == 200

    r = s.post(server.url("/o/acme/logout"), data={"csrf_token": token},
               allow_redirects=False)
    assert r.status_code == 303, (r.status_code, r.text[:300])
    assert r.headers["Location"].endswith("/o/acme/login"), r.headers["Location"]
    r = requests.get(server.api("/me"), cookies={"gh_session": cookie},
                     timeout=10)
    assert r.status_code == 401


def test_account_page_without_a_session_does_not_show_an_account(server):
    r = requests.get(server.url("/o/acme/account"), allow_redirects=False,
                     timeout=10)
    assert r.status_code in (303, 302, 401), r.status_code
    if r.status_code in (302, 303):
        assert "/o/acme/login" in r.headers["Location"]
