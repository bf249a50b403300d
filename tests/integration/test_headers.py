"""Security headers on every response (issue 2, HTTP server): CSP,
X-Content-Type-Options, Referrer-Policy, frame denial; no HSTS on plain
HTTP."""

import requests

from conftest import ADMIN_PASSWORD, raw_http


def check_headers(resp_headers, what):
    h = {k.lower(): v for k, v in resp_headers.items()}
    csp = h.get("content-security-policy")
    assert csp, f"{what}: no Content-Security-Policy"
    directives = {}
    for d in csp.split(";"):
        parts = d.strip().split()
        if parts:
            directives[parts[0].lower()] = [p.lower() for p in parts[1:]]
    assert "default-src" in directives, f"{what}: CSP without default-src: {csp}"
    scripts = directives.get("script-src", directives["default-src"])
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, \
        f"{what}: CSP allows inline script: {csp}"
    assert h.get("x-content-type-options", "").lower() == "nosniff", what
    assert h.get("referrer-policy"), f"{what}: no Referrer-Policy"
    assert h.get("referrer-policy").lower() != "unsafe-url", what
    frames = h.get("x-frame-options", "").upper()
    assert frames in ("DENY", "SAMEORIGIN"), f"{what}: X-Frame-Options {frames!r}"
    assert "strict-transport-security" not in h, f"{what}: HSTS on plain HTTP"


def test_security_headers_on_every_kind_of_response(server, admin):
    responses = {
        "healthz": requests.get(server.url("/healthz"), timeout=10),
        "readyz": requests.get(server.url("/readyz"), timeout=10),
        "metrics": requests.get(server.url("/metrics"), timeout=10),
        "login form": requests.get(server.url("/o/acme/login"), timeout=10),
        "account": admin.get(server.url("/o/acme/account")),
        "me": admin.get(server.api("/me")),
        "users": admin.get(server.api("/users")),
        "signin 200": server.signin("admin", ADMIN_PASSWORD),
        "signin 401": server.signin("admin", "Wrong-Password-1234!"),
        "unauthenticated": requests.get(server.api("/users"), timeout=10),
        "unknown org": requests.get(server.url("/o/nope/api/v1/me"), timeout=10),
        "unknown route": requests.get(server.url("/nothing-here"), timeout=10),
        "405": requests.put(server.api("/session"), timeout=10),
        "400 json": requests.post(server.api("/session"), data="{",
                                  headers={"Content-Type": "application/json"},
                                  timeout=10),
        "415": requests.post(server.api("/session"), data="x",
                             headers={"Content-Type": "text/plain"}, timeout=10),
        "csrf": requests.delete(server.api("/session"), timeout=10,
                                cookies={"gh_session": admin.cookie}),
        "form redirect": admin.post(server.url("/o/acme/logout"),
                                    data={"csrf_token": admin.csrf},
                                    allow_redirects=False),
    }
    for what, r in responses.items():
        check_headers(r.headers, f"{what} ({r.status_code})")
        assert r.headers.get("X-Request-Id"), f"{what}: no X-Request-Id"


def test_security_headers_on_413_and_raw_errors(server):
    big = b"x" * (1048576 + 1)
    head = (f"POST /o/acme/api/v1/session HTTP/1.1\r\nHost: x\r\n"
            f"Connection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(big)}\r\n\r\n").encode()
    status, headers, _ = raw_http(server.port, head + big)
    assert status == 413
    check_headers(headers, "413")

