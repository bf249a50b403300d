"""Bad input: each gets a clear JSON error and the server keeps serving
(docs/api.md, Errors; issue 2, Bad input)."""

import json
from urllib.parse import unquote

import pytest
import requests

from conftest import (ADMIN_PASSWORD, error_of, expect_error, raw_http)


def still_serving(server):
    r = requests.get(server.url("/healthz"), timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def raw(server, method, path, headers=(), body=b""):
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}",
            "Connection: close", *headers]
    if body or method in ("POST", "PUT", "PATCH"):
        head.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    return raw_http(server.port, data)


def raw_json_error(status, headers, body):
    assert headers.get("content-type", "").startswith("application/json"), \
        (status, headers, body[:300])
    err = json.loads(body)
    assert err["error"] and err["message"] and err["request_id"], err
    assert headers.get("x-request-id") == err["request_id"]
    return err


SIGNIN_BODIES = {
    "truncated": b'{"username": "admin", "password": ',
    "not json": b"username=admin&password=x",
    "array": b'["admin", "x"]',
    "string": b'"admin"',
    "number": b"42",
    "null": b"null",
    "empty": b"",
    "trailing garbage": b'{"username": "admin", "password": "x"} {}',
    "duplicate keys": b'{"username": "ghost", "username": "admin", "password": "x"}',
    "invalid utf-8": b'{"username": "adm\xffin", "password": "x"}',
    "overlong utf-8": b'{"username": "\xc0\xaf", "password": "x"}',
    "utf-16 surrogate": b'{"username": "\xed\xa0\x80", "password": "x"}',
    "deep nesting": b'{"username": ' + b"[" * 5000 + b"]" * 5000 + b', "password": "x"}',
}


@pytest.mark.parametrize("name", sorted(SIGNIN_BODIES))
def test_malformed_json_is_400_invalid_json(server, name):
    r = requests.post(server.api("/session"), data=SIGNIN_BODIES[name],
                      headers={"Content-Type": "application/json"}, timeout=10)
    if name == "deep nesting":
        # Parses only with deep recursion; a field of the wrong type is
        # invalid_request, a refusal to parse is invalid_json. Either is clear.
        assert r.status_code == 400, r.text
        assert error_of(r)["error"] in ("invalid_json", "invalid_request")
    else:
        expect_error(r, 400, "invalid_json")
    still_serving(server)


def test_nul_in_a_json_string_is_refused(server):
    r = requests.post(server.api("/session"),
                      data=b'{"username": "adm\\u0000in", "password": "x"}',
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400, r.text
    assert error_of(r)["error"] in ("invalid_json", "invalid_request")


def test_admin_api_rejects_malformed_json_without_writing(server, admin):
    before = server.query("SELECT count(*) AS n FROM users")[0]["n"]
    for body in (b'{"username": "x", "username": "y"}', b'{"username": "\xfe"}',
                 b'{"username": "z",}', b"[]"):
        r = admin.post(server.api("/users"), data=body,
                       headers={"Content-Type": "application/json"})
        expect_error(r, 400, "invalid_json")
    assert server.query("SELECT count(*) AS n FROM users")[0]["n"] == before


def test_oversized_body_is_413(server):
    big = b'{"username": "admin", "password": "' + b"a" * (1048576 + 10) + b'"}'
    status, headers, body = raw(server, "POST", "/o/acme/api/v1/session",
                                ["Content-Type: application/json"], big)
    assert status == 413, (status, headers, body[:300])
    assert raw_json_error(status, headers, body)["error"] == "body_too_large"
    still_serving(server)


def test_oversized_chunked_body_is_413(server):
    chunk = b"a" * 65536
    parts = [b'{"username": "admin", "password": "']
    parts += [chunk] * 17  # > 1 MiB
    parts.append(b'"}')
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    head = (b"POST /o/acme/api/v1/session HTTP/1.1\r\nHost: x\r\n"
            b"Connection: close\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    status, headers, rbody = raw_http(server.port, head + body)
    assert status == 413, (status, headers, rbody[:300])
    assert raw_json_error(status, headers, rbody)["error"] == "body_too_large"
    still_serving(server)


def test_body_just_under_the_limit_is_parsed(server):
    pw = "a" * (1048576 - 100)
    r = requests.post(server.api("/session"), timeout=30,
                      json={"username": "admin", "password": pw})
    # A password this long is refused, but as a sign-in, not a size error.
    assert r.status_code in (400, 401), r.text[:300]
    assert error_of(r)["error"] in ("invalid_credentials", "invalid_request")


def test_smaller_max_body_bytes_is_enforced(server_factory):
    srv = server_factory(serve_env={"GATEHOUSE_MAX_BODY_BYTES": "2048"})
    r = requests.post(srv.api("/session"), timeout=10,
                      json={"username": "admin", "password": "x" * 3000})
    expect_error(r, 413, "body_too_large")
    assert srv.signin("admin", ADMIN_PASSWORD).status_code == 200


def test_huge_headers_get_431_or_a_clean_close(server):
    status, headers, body = raw(server, "GET", "/o/acme/api/v1/me",
                                ["X-Filler: " + "a" * 40000])
    assert status in (431, None), (status, headers, body[:300])
    if status == 431 and headers.get("content-type", "").startswith("application/json"):
        assert json.loads(body)["error"] == "headers_too_large"
    status, headers, body = raw(server, "GET", "/o/acme/api/v1/me",
                                [f"X-Many-{i}: {'b' * 100}" for i in range(400)])
    assert status in (431, None), (status, headers, body[:300])
    status, headers, body = raw(server, "GET", "/o/acme/api/v1/me?" + "q" * 40000)
    assert status in (414, 431, None), (status, headers, body[:300])
    still_serving(server)


def test_headers_just_under_the_limit_are_fine(server):
    r = requests.get(server.url("/healthz"), headers={"X-Filler": "a" * 8000},
                     timeout=10)
    assert r.status_code == 200


def test_unknown_org_is_404_org_not_found(server):
    for path in ("/o/nosuchorg/api/v1/me", "/o/nosuchorg/api/v1/users"):
        expect_error(requests.get(server.url(path), timeout=10), 404, "org_not_found")
    assert requests.get(server.url("/o/nosuchorg/login"), timeout=10).status_code == 404
    r = requests.post(server.url("/o/nosuchorg/api/v1/session"), timeout=10,
                      json={"username": "admin", "password": ADMIN_PASSWORD})
    expect_error(r, 404, "org_not_found")
    r = requests.get(server.url("/o/" + "x" * 300 + "/api/v1/me"), timeout=10)
    assert r.status_code in (400, 404), r.text
    assert error_of(r)["error"] in ("org_not_found", "invalid_path")
    still_serving(server)


TRAVERSALS = [
    "/o/..%2f..%2fetc/api/v1/me",
    "/o/..%2F..%2Fetc/api/v1/me",
    "/o/acme/api/v1/users/..%2f..",
    "/o/acme/api/v1/users/..",
    "/o/acme/api/v1/users/%2e%2e",
    "/o/acme/../../etc/passwd",
    "/o/acme/api/v1/../v1/me",
    "/o/acme/api/v1/users/%00",
    "/o/acme/api/v1/users/a%2fb",
    "/o/acme/api/v1/users/%ff%fe",
    "/o/acme%00/api/v1/me",
    "/o/acme/api/v1//me",
    "/o/acme/api/v1/users/..\\..\\etc",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_gets_a_clear_error(server, admin, path):
    tok = server.create_token(admin, "trav", days=1)["token"]
    status, headers, body = raw(server, "GET", path,
                                [f"Authorization: Bearer {tok}"])
    assert status in (400, 404), (status, body[:300])
    err = raw_json_error(status, headers, body)
    assert err["error"] in ("invalid_path", "not_found", "org_not_found"), err
    # A ".." segment once decoded is what docs/api.md calls invalid_path.
    if ".." in unquote(path.split("?")[0]).split("/"):
        assert err["error"] == "invalid_path", (path, err)
    assert b"root:" not in body
    still_serving(server)


def test_wrong_content_type_is_415(server, admin):
    body = json.dumps({"username": "admin", "password": ADMIN_PASSWORD})
    for ctype in ("text/plain", "application/x-www-form-urlencoded",
                  "application/xml", "multipart/form-data; boundary=x"):
        r = requests.post(server.api("/session"), data=body, timeout=10,
                          headers={"Content-Type": ctype})
        expect_error(r, 415, "unsupported_media_type")
    r = admin.post(server.api("/users"), data='{"username": "ct"}',
                   headers={"Content-Type": "text/plain"})
    expect_error(r, 415, "unsupported_media_type")
    # A charset parameter is fine.
    r = requests.post(server.api("/session"), data=body, timeout=10,
                      headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200, r.text
    still_serving(server)


def test_unknown_routes_and_methods(server, admin):
    expect_error(admin.get(server.api("/no-such-thing")), 404, "not_found")
    expect_error(requests.get(server.url("/nope"), timeout=10), 404, "not_found")
    r = admin.put(server.api("/me"), json={})
    expect_error(r, 405, "method_not_allowed")
    assert "GET" in r.headers.get("Allow", ""), r.headers
    r = admin.post(server.api("/users/" + "0" * 32), json={})
    expect_error(r, 405, "method_not_allowed")
    status, headers, body = raw(server, "FROB", "/o/acme/api/v1/me")
    assert status in (400, 405, 501), (status, body[:200])


def test_garbage_on_the_socket_does_not_kill_the_server(server):
    for data in (b"\x00\x01\x02\x03" * 100, b"GET\r\n\r\n",
                 b"GET / HTTP/9.9\r\n\r\n", b"\xff" * 5000 + b"\r\n\r\n",
                 b"POST /o/acme/api/v1/session HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: -5\r\n\r\n",
                 b"POST /o/acme/api/v1/session HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 99999999999999999999\r\n\r\n"):
        status, _, _ = raw_http(server.port, data, timeout=5)
        assert status is None or 400 <= status < 600
    still_serving(server)


def test_query_and_cursor_fuzz(server, admin):
    for q in ("limit=%ff", "q=%00", "q=" + "x" * 5000, "cursor=" + "A" * 2000,
              "limit=1&limit=2", "q=%ed%a0%80"):
        r = admin.get(server.api(f"/users?{q}"))
        assert r.status_code in (200, 400), (q, r.status_code, r.text[:200])
        if r.status_code == 400:
            assert error_of(r)["error"] in ("invalid_request", "invalid_path")
    still_serving(server)
