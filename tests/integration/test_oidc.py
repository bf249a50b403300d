"""OpenID Connect provider (docs/api.md "OpenID Connect"): discovery, JWKS
and key rotation, client settings and secrets, the code flow with PKCE
through the HTML sign-in form, the token endpoint (code, refresh with
rotation and reuse detection, client credentials), userinfo,
introspection, revocation and RP-initiated logout. Tokens are verified
with python3-jwcrypto against the published JWKS, independently of the
server's own JOSE code."""

import base64
import hashlib
import json
import re
import secrets
import time
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from jwcrypto import jwk, jwt

from conftest import USER_PASSWORD, expect_error

RP = "http://127.0.0.1:9/cb"
POST_LOGOUT = "http://127.0.0.1:9/bye"


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def pkce_pair():
    verifier = b64url(secrets.token_bytes(32))
    challenge = b64url(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge


class Client:
    def __init__(self, server, admin, first_party=True, **settings):
        r = admin.post(server.api("/apps"), json={
            "name": f"rp-{secrets.token_hex(4)}", "kind": "oidc",
            "first_party": first_party}, timeout=30)
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]
        body = {"redirect_uris": [RP],
                "post_logout_redirect_uris": [POST_LOGOUT],
                "grant_types": ["authorization_code", "refresh_token",
                                "client_credentials"]}
        body.update(settings)
        r = admin.put(server.api(f"/apps/{self.id}/oidc"), json=body,
                      timeout=30)
        assert r.status_code == 200, r.text
        self.settings = r.json()
        self.secret = None
        if self.settings["client_type"] == "confidential":
            r = admin.post(server.api(f"/apps/{self.id}/oidc/secret"),
                           timeout=30)
            assert r.status_code == 201, r.text
            self.secret = r.json()["client_secret"]

    @property
    def auth(self):
        return (self.id, self.secret) if self.secret else None


@pytest.fixture
def oidc(server, admin):
    user = server.create_user(admin, "alice", USER_PASSWORD,
                              email="alice@example.com",
                              display_name="Alice Example")
    return {"user": user}


def assign(server, admin, client, user_id):
    r = admin.post(server.api(f"/apps/{client.id}/assignments"),
                   json={"user_id": user_id}, timeout=30)
    assert r.status_code == 201, r.text


def col(server, sql, params=()):
    """The first column of each row of a tenant query."""
    return [next(iter(r.values())) for r in server.query(sql, params)]


def issuer(server):
    return f"{server.base}/o/{server.org}"


def jwks(server):
    r = requests_get(server, "/oidc/jwks")
    assert r.status_code == 200
    return jwk.JWKSet.from_json(r.text)


def requests_get(server, path, **kw):
    import requests
    return requests.get(issuer(server) + path, timeout=30, **kw)


def verify(server, token, typ=None, alg="ES256"):
    """Verifies with jwcrypto against the published JWKS; returns claims."""
    keyset = jwks(server)
    t = jwt.JWT(jwt=token, key=keyset, algs=[alg])
    header = json.loads(t.header)
    if typ is not None:
        assert header["typ"] == typ
    return json.loads(t.claims)


def browser(server, username="alice", password=USER_PASSWORD):
    """A cookie-following client that signs in on the HTML form."""
    s = server.new_session()
    return s, username, password


def authorize(server, s, client, creds=None, scope="openid profile email",
              challenge=None, nonce="n-123", state="s-456", extra=None):
    """Drives /authorize (signing in on the form when asked); returns the
    final redirect to the RP parsed: dict of query values."""
    q = {"response_type": "code", "client_id": client.id,
         "redirect_uri": RP, "scope": scope, "state": state, "nonce": nonce}
    if challenge:
        q["code_challenge"] = challenge
        q["code_challenge_method"] = "S256"
    q.update(extra or {})
    r = s.get(issuer(server) + "/oidc/authorize?" + urlencode(q),
              allow_redirects=False, timeout=30)
    for _ in range(6):
        if r.status_code not in (302, 303):
            break
        loc = r.headers["Location"]
        if loc.startswith(RP):
            return parse_qs(urlparse(loc).query)
        if "/login" in loc and creds:
            r = s.get(server.url(loc) if loc.startswith("/") else loc,
                      timeout=30)
            assert r.status_code == 200, r.text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                             r.text).group(1)
            r = s.post(f"{issuer(server)}/login", data={
                "username": creds[0], "password": creds[1],
                "csrf_token": csrf}, allow_redirects=False, timeout=30)
            continue
        r = s.get(server.url(loc) if loc.startswith("/") else loc,
                  allow_redirects=False, timeout=30)
    return r


def token(server, client, data, auth=True):
    kw = {}
    if auth and client.secret:
        kw["auth"] = (client.id, client.secret)
    elif not client.secret:
        data = dict(data, client_id=client.id)
    import requests
    return requests.post(issuer(server) + "/oidc/token", data=data,
                         timeout=30, **kw)


def code_flow(server, client, s=None, scope="openid profile email groups"):
    s = s or server.new_session()
    verifier, challenge = pkce_pair()
    q = authorize(server, s, client, creds=("alice", USER_PASSWORD),
                  scope=scope, challenge=challenge)
    assert isinstance(q, dict), getattr(q, "text", q)
    assert q["state"] == ["s-456"]
    r = token(server, client, {"grant_type": "authorization_code",
                               "code": q["code"][0], "redirect_uri": RP,
                               "code_verifier": verifier})
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    return s, r.json(), q["code"][0], verifier


# ---- discovery, keys ---------------------------------------------------------


def test_discovery_and_jwks(server):
    r = requests_get(server, "/.well-known/openid-configuration")
    assert r.status_code == 200
    d = r.json()
    assert d["issuer"] == issuer(server)
    assert d["token_endpoint"] == issuer(server) + "/oidc/token"
    assert d["jwks_uri"] == issuer(server) + "/oidc/jwks"
    assert d["code_challenge_methods_supported"] == ["S256"]
    assert d["id_token_signing_alg_values_supported"] == [
        "ES256", "RS256", "EdDSA"]
    keys = requests_get(server, "/oidc/jwks").json()["keys"]
    assert len(keys) == 1
    k = keys[0]
    assert k["kty"] == "EC" and k["crv"] == "P-256" and k["alg"] == "ES256"
    assert "d" not in k
    # Stored encrypted, never as PEM text.
    rows = col(server, "SELECT instr(private_ct, 'PRIVATE') FROM oidc_keys")
    assert rows == [0]


def test_key_rotation_publishes_before_signing(server_factory):
    srv = server_factory(serve_env={"GATEHOUSE_OIDC_KEY_PUBLISH_DELAY_S": "2"})
    admin = srv.login()
    srv.create_user(admin, "alice", USER_PASSWORD, email="a@example.com")
    alice = col(srv, "SELECT id FROM users WHERE username = 'alice'")[0]
    c = Client(srv, admin)
    assign(srv, admin, c, alice)
    _, t1, _, _ = code_flow(srv, c)
    kid1 = jwt.JWT(jwt=t1["id_token"]).token.jose_header["kid"]
    r = admin.post(srv.api("/oidc/keys/rotate"), timeout=30)
    assert r.status_code == 201, r.text
    assert [k["alg"] for k in r.json()["keys"]] == ["ES256"]
    kid2 = r.json()["keys"][0]["kid"]
    kids = [k["kid"] for k in requests_get(srv, "/oidc/jwks").json()["keys"]]
    assert set(kids) == {kid1, kid2}
    # Published but not yet signing.
    _, t2, _, _ = code_flow(srv, c)
    assert jwt.JWT(jwt=t2["id_token"]).token.jose_header["kid"] == kid1
    time.sleep(2.5)
    _, t3, _, _ = code_flow(srv, c)
    assert jwt.JWT(jwt=t3["id_token"]).token.jose_header["kid"] == kid2
    # The old key stays published for the tokens it signed.
    verify(srv, t1["id_token"])
    events = col(srv, "SELECT action FROM audit_events WHERE action LIKE "
                 "'oidc.key.%'")
    assert "oidc.key.rotate" in events
    # Only holders of org.write may rotate.
    r = srv.bearer("nope").post(srv.api("/oidc/keys/rotate"), timeout=30)
    assert r.status_code == 401


# ---- client settings ---------------------------------------------------------


def test_client_settings_validation(server, admin):
    r = admin.post(server.api("/apps"), json={"name": "plain"}, timeout=30)
    other = r.json()["id"]
    expect_error(admin.put(server.api(f"/apps/{other}/oidc"),
                           json={"redirect_uris": [RP]}, timeout=30),
                 409, "app_not_oidc")
    c = Client(server, admin)
    bad = [
        {"redirect_uris": []},
        {"redirect_uris": ["http://evil.example/cb"]},
        {"redirect_uris": ["https://a.example/cb#frag"]},
        {"redirect_uris": [RP], "grant_types": ["implicit"]},
        {"redirect_uris": [RP], "client_type": "public",
         "token_endpoint_auth_method": "client_secret_basic"},
        {"redirect_uris": [RP], "client_type": "public",
         "grant_types": ["client_credentials"]},
        {"redirect_uris": [RP], "access_token_lifetime_s": 5},
        {"redirect_uris": [RP], "unknown": 1},
    ]
    for body in bad:
        r = admin.put(server.api(f"/apps/{c.id}/oidc"), json=body,
                      timeout=30)
        assert r.status_code == 400, (body, r.text)
    r = admin.get(server.api(f"/apps/{c.id}/oidc"), timeout=30)
    assert r.status_code == 200
    assert r.json()["has_secret"] is True
    assert r.json()["client_id"] == c.id
    assert "client_secret" not in r.json()
    digest = col(server, "SELECT hex(secret_digest) FROM oidc_clients "
                 "WHERE app_id = ?", (c.id,))[0]
    assert digest.lower() == hashlib.sha256(c.secret.encode()).hexdigest()
    actions = col(server, "SELECT action FROM audit_events WHERE "
                  "target_id = ?", (c.id,))
    assert "oidc.client.update" in actions
    assert "oidc.secret.rotate" in actions
    assert not any(c.secret in str(r) for r in col(
        server, "SELECT changes FROM audit_events"))


# ---- code flow ---------------------------------------------------------------


def test_code_flow_end_to_end(server, admin, oidc):
    r = admin.post(server.api("/groups"), json={"name": "Support"},
                   timeout=30)
    assert r.status_code == 201, r.text
    r = admin.put(server.api(f"/groups/{r.json()['id']}/members/"
                             f"{oidc['user']['id']}"), timeout=30)
    assert r.status_code == 201, r.text
    c = Client(server, admin)
    admin.post(server.api(f"/apps/{c.id}/roles"), json={"name": "agent"},
               timeout=30)
    r = admin.post(server.api(f"/apps/{c.id}/assignments"),
                   json={"user_id": oidc["user"]["id"], "role": "agent"},
                   timeout=30)
    assert r.status_code == 201, r.text
    s, t, _, _ = code_flow(server, c)
    assert t["token_type"] == "Bearer"
    idt = verify(server, t["id_token"], typ="JWT")
    assert idt["iss"] == issuer(server)
    assert idt["sub"] == oidc["user"]["id"]
    assert idt["aud"] == c.id
    assert idt["nonce"] == "n-123"
    assert idt["amr"] == ["pwd"]
    assert idt["email"] == "alice@example.com"
    assert idt["name"] == "Alice Example"
    assert idt["groups"] == ["Support"]
    assert idt["roles"] == ["agent"]
    assert idt["exp"] > time.time() > idt["iat"] - 5
    at = verify(server, t["access_token"], typ="at+jwt")
    assert at["client_id"] == c.id and at["sub"] == oidc["user"]["id"]
    assert "jti" in at
    r = requests_get(server, "/oidc/userinfo",
                     headers={"Authorization": f"Bearer {t['access_token']}"})
    assert r.status_code == 200, r.text
    assert r.json()["sub"] == oidc["user"]["id"]
    assert r.json()["email"] == "alice@example.com"
    # A second authorize reuses the session: no sign-in form.
    q = authorize(server, s, c, challenge=pkce_pair()[1])
    assert "code" in q
    actions = col(server, "SELECT action FROM audit_events WHERE action "
                  "LIKE 'oidc.%'")
    assert "oidc.token.issue" in actions
    changes = " ".join(str(r) for r in col(
        server, "SELECT changes FROM audit_events WHERE action = "
        "'oidc.token.issue'"))
    assert t["access_token"] not in changes
    assert t["refresh_token"] not in changes


def test_login_return_to_is_same_origin_only(server, oidc):
    s = server.new_session()
    for bad in ("https://evil.example/", "//evil.example/x",
                "/o/other/oidc/authorize", "/o/acme/\\evil"):
        r = s.get(f"{issuer(server)}/login", params={"return_to": bad},
                  timeout=30)
        assert r.status_code == 200
        assert "gh_return_to" not in r.headers.get("Set-Cookie", "")


def test_bad_client_or_redirect_uri_is_an_error_page(server, admin, oidc):
    c = Client(server, admin)
    s = server.new_session()
    for q in ({"client_id": c.id, "redirect_uri": "http://127.0.0.1:9/x"},
              {"client_id": "0" * 32, "redirect_uri": RP},
              {"client_id": c.id},
              {"client_id": "../x", "redirect_uri": RP}):
        q.update(response_type="code", scope="openid")
        r = s.get(issuer(server) + "/oidc/authorize", params=q,
                  allow_redirects=False, timeout=30)
        assert r.status_code == 400, q
        assert "Location" not in r.headers
        assert "text/html" in r.headers["Content-Type"]


def test_authorize_errors_redirect_to_the_client(server, admin, oidc):
    c = Client(server, admin, client_type="public",
               token_endpoint_auth_method="none",
               grant_types=["authorization_code"])
    s = server.new_session()
    # Public client without PKCE, plain PKCE, a bad response_type.
    for extra, code in (({}, "invalid_request"),
                        ({"code_challenge": "x" * 43,
                          "code_challenge_method": "plain"},
                         "invalid_request"),
                        ({"response_type": "token",
                          "code_challenge": pkce_pair()[1],
                          "code_challenge_method": "S256"},
                         "unsupported_response_type")):
        q = {"response_type": "code", "client_id": c.id, "redirect_uri": RP,
             "scope": "openid", "state": "st"}
        q.update(extra)
        r = s.get(issuer(server) + "/oidc/authorize", params=q,
                  allow_redirects=False, timeout=30)
        assert r.status_code in (302, 303)
        got = parse_qs(urlparse(r.headers["Location"]).query)
        assert r.headers["Location"].startswith(RP)
        assert got["error"] == [code] and got["state"] == ["st"]
    # prompt=none without a session.
    q = {"response_type": "code", "client_id": c.id, "redirect_uri": RP,
         "scope": "openid", "code_challenge": pkce_pair()[1],
         "code_challenge_method": "S256", "prompt": "none"}
    r = s.get(issuer(server) + "/oidc/authorize", params=q,
              allow_redirects=False, timeout=30)
    assert parse_qs(urlparse(r.headers["Location"]).query)["error"] == \
        ["login_required"]


def test_unassigned_user_is_refused(server, admin, oidc):
    c = Client(server, admin)
    q = authorize(server, server.new_session(), c,
                  creds=("alice", USER_PASSWORD),
                  challenge=pkce_pair()[1])
    assert q["error"] == ["access_denied"]


def test_third_party_app_asks_consent_once(server, admin, oidc):
    c = Client(server, admin, first_party=False)
    assign(server, admin, c, oidc["user"]["id"])
    s = server.new_session()
    verifier, challenge = pkce_pair()
    r = authorize(server, s, c, creds=("alice", USER_PASSWORD),
                  challenge=challenge)
    assert not isinstance(r, dict) and r.status_code == 200
    assert "Allow" in r.text
    fields = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', r.text))
    # A forged form (wrong CSRF) is refused.
    bad = dict(fields, csrf_token="x" * 43, decision="allow")
    r2 = s.post(issuer(server) + "/oidc/authorize", data=bad,
                allow_redirects=False, timeout=30)
    assert r2.status_code == 403
    import html
    fields = {k: html.unescape(v) for k, v in fields.items()}
    r2 = s.post(issuer(server) + "/oidc/authorize",
                data=dict(fields, decision="allow"), allow_redirects=False,
                timeout=30)
    assert r2.status_code in (302, 303), r2.text
    assert "code=" in r2.headers["Location"]
    # Remembered: the next request skips the page.
    q = authorize(server, s, c, challenge=pkce_pair()[1])
    assert "code" in q
    assert col(server, "SELECT count(*) FROM audit_events WHERE "
               "action = 'oidc.grant'") == [1]
    # The user sees the grant and revokes it: the app's tokens die.
    r = s.post(issuer(server) + "/oidc/token", data={
        "grant_type": "authorization_code", "code": q["code"][0],
        "redirect_uri": RP, "code_verifier": "x" * 43},
        auth=(c.id, c.secret), timeout=30)
    assert r.json()["error"] == "invalid_grant"
    # A wider scope asks again; the one granted does not.
    r = authorize(server, s, c, scope="openid groups",
                  challenge=pkce_pair()[1])
    assert not isinstance(r, dict) and "Allow" in r.text
    _, t, _, _ = code_flow(server, c, s=s, scope="openid profile email")
    me = server.login("alice", USER_PASSWORD)
    r = me.get(server.api("/me/grants"), timeout=30)
    assert r.status_code == 200
    grants = r.json()["grants"]
    assert [g["client_id"] for g in grants] == [c.id]
    assert grants[0]["scope"] == "openid profile email"
    r = me.delete(server.api(f"/me/grants/{c.id}"), timeout=30)
    assert r.status_code == 204, r.text
    r = token(server, c, {"grant_type": "refresh_token",
                          "refresh_token": t["refresh_token"]})
    assert r.json()["error"] == "invalid_grant"
    expect_error(me.delete(server.api(f"/me/grants/{c.id}"), timeout=30),
                 404, "grant_not_found")
    assert me.get(server.api("/me/grants"), timeout=30).json() == \
        {"grants": []}
    assert "oidc.grant.revoke" in col(server, "SELECT action FROM "
                                      "audit_events")


def test_prompt_login_asks_for_the_password_again(server, admin, oidc):
    c = Client(server, admin)
    assign(server, admin, c, oidc["user"]["id"])
    s, _, _, _ = code_flow(server, c)
    q = {"response_type": "code", "client_id": c.id, "redirect_uri": RP,
         "scope": "openid", "code_challenge": pkce_pair()[1],
         "code_challenge_method": "S256", "prompt": "login"}
    r = s.get(issuer(server) + "/oidc/authorize", params=q,
              allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303) and "/login?return_to=" in \
        r.headers["Location"]
    time.sleep(1.1)
    got = authorize(server, s, c, creds=("alice", USER_PASSWORD),
                    challenge=pkce_pair()[1], extra={"prompt": "login"})
    assert "code" in got, got


@pytest.mark.parametrize("alg", ["RS256", "EdDSA"])
def test_clients_may_ask_for_rs256_or_eddsa(server, admin, oidc, alg):
    c = Client(server, admin, id_token_signed_response_alg=alg)
    assign(server, admin, c, oidc["user"]["id"])
    _, t, _, _ = code_flow(server, c)
    assert jwt.JWT(jwt=t["id_token"]).token.jose_header["alg"] == alg
    assert verify(server, t["id_token"], alg=alg)["sub"] == oidc["user"]["id"]
    verify(server, t["access_token"], typ="at+jwt", alg=alg)
    r = requests_get(server, "/oidc/userinfo",
                     headers={"Authorization": f"Bearer {t['access_token']}"})
    assert r.status_code == 200
    kinds = {k["alg"] for k in requests_get(server, "/oidc/jwks").json()[
        "keys"]}
    assert kinds == {"ES256", alg}
    # Rotation renews every algorithm in use.
    r = admin.post(server.api("/oidc/keys/rotate"), timeout=30)
    assert sorted(k["alg"] for k in r.json()["keys"]) == sorted(
        ["ES256", alg])


def test_acr_values_mfa_steps_up_or_refuses(server, admin, oidc):
    c = Client(server, admin)
    assign(server, admin, c, oidc["user"]["id"])
    s, t, _, _ = code_flow(server, c)
    assert verify(server, t["id_token"])["acr"] == "pwd"
    q = {"response_type": "code", "client_id": c.id, "redirect_uri": RP,
         "scope": "openid", "code_challenge": pkce_pair()[1],
         "code_challenge_method": "S256", "acr_values": "mfa", "state": "a"}
    r = s.get(issuer(server) + "/oidc/authorize", params=q,
              allow_redirects=False, timeout=30)
    # A fresh sign-in is asked for (the session without MFA ends).
    assert r.status_code in (302, 303)
    assert "/login?return_to=" in r.headers["Location"]
    assert "acr_values%3Dmfa" in r.headers["Location"]
    time.sleep(1.1)
    # alice has no second factor: after that sign-in, a refusal.
    got = authorize(server, s, c, creds=("alice", USER_PASSWORD),
                    challenge=pkce_pair()[1], extra={"acr_values": "mfa"})
    assert got["error"] == ["unmet_authentication_requirements"], got


def test_sign_in_with_a_second_factor_comes_back_with_amr_mfa(server, admin,
                                                              oidc):
    import html
    from test_mfa import enrol, totp
    c = Client(server, admin)
    assign(server, admin, c, oidc["user"]["id"])
    secret, _ = enrol(server, server.login("alice", USER_PASSWORD))
    s = server.new_session()
    verifier, challenge = pkce_pair()
    q = {"response_type": "code", "client_id": c.id, "redirect_uri": RP,
         "scope": "openid", "code_challenge": challenge,
         "code_challenge_method": "S256", "acr_values": "mfa", "nonce": "m"}
    r = s.get(issuer(server) + "/oidc/authorize", params=q, timeout=30)
    assert r.url.startswith(issuer(server) + "/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = s.post(issuer(server) + "/login", data={
        "username": "alice", "password": USER_PASSWORD, "csrf_token": csrf},
        allow_redirects=False, timeout=30)
    assert r.status_code == 200 and "/login/mfa" in r.text
    csrf2 = html.unescape(re.search(r'name="csrf_token" value="([^"]+)"',
                                    r.text).group(1))
    r = s.post(issuer(server) + "/login/mfa", data={
        "method": "totp", "code": totp(secret, 1), "csrf_token": csrf2},
        allow_redirects=False, timeout=30)
    assert r.status_code == 303, r.text[:300]
    assert "/oidc/authorize?" in r.headers["Location"]
    r = s.get(server.url(r.headers["Location"]), allow_redirects=False,
              timeout=30)
    assert r.headers["Location"].startswith(RP + "?code=")
    code = parse_qs(urlparse(r.headers["Location"]).query)["code"][0]
    t = token(server, c, {"grant_type": "authorization_code", "code": code,
                          "redirect_uri": RP, "code_verifier": verifier})
    idt = verify(server, t.json()["id_token"])
    assert idt["amr"] == ["pwd", "mfa"] and idt["acr"] == "mfa"

    # The session's second factor counts for the next step-up...
    q["code_challenge"] = pkce_pair()[1]
    r = s.get(issuer(server) + "/oidc/authorize", params=q,
              allow_redirects=False, timeout=30)
    assert r.headers["Location"].startswith(RP + "?code="), r.headers
    # ...until it is older than the security policy's reauth_interval_s.
    default = "0" * 31 + "1"
    r = admin.patch(server.api(f"/security-policies/{default}"), json={
        "settings": {"mfa": {"reauth_interval_s": 600}}})
    assert r.status_code == 200, r.text
    r = s.get(issuer(server) + "/oidc/authorize", params=q,
              allow_redirects=False, timeout=30)
    assert r.headers["Location"].startswith(RP + "?code="), r.headers
    server.query("UPDATE sessions SET mfa_at = mfa_at - 700000 "
                 "WHERE user_id = ?", (oidc["user"]["id"],))
    r = s.get(issuer(server) + "/oidc/authorize", params=q,
              allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303)
    assert "/login?return_to=" in r.headers["Location"], r.headers


# ---- token endpoint ----------------------------------------------------------


def test_pkce_and_redirect_uri_are_checked(server, admin, oidc):
    c = Client(server, admin)
    assign(server, admin, c, oidc["user"]["id"])
    s = server.new_session()
    verifier, challenge = pkce_pair()
    cases = [{"code_verifier": verifier, "redirect_uri": RP + "x"},
             {"redirect_uri": RP},
             {"code_verifier": pkce_pair()[0], "redirect_uri": RP}]
    for case in cases:
        q = authorize(server, s, c, creds=("alice", USER_PASSWORD),
                      challenge=challenge)
        r = token(server, c, dict(case, grant_type="authorization_code",
                                  code=q["code"][0]))
        assert r.status_code == 400, case
        assert r.json()["error"] == "invalid_grant", (case, r.text)
        # A failed exchange burns the code too.
        r = token(server, c, {"grant_type": "authorization_code",
                              "code": q["code"][0], "redirect_uri": RP,
                              "code_verifier": verifier})
        assert r.json()["error"] == "invalid_grant", (case, r.text)


def test_code_reuse_revokes_what_it_issued(server, admin, oidc):
    c = Client(server, admin)
    assign(server, admin, c, oidc["user"]["id"])
    _, t, code, verifier = code_flow(server, c)
    r = token(server, c, {"grant_type": "authorization_code", "code": code,
                          "redirect_uri": RP, "code_verifier": verifier})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = requests_get(server, "/oidc/userinfo",
                     headers={"Authorization": f"Bearer {t['access_token']}"})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_token"
    r = token(server, c, {"grant_type": "refresh_token",
                          "refresh_token": t["refresh_token"]})
    assert r.json()["error"] == "invalid_grant"


def test_refresh_rotation_and_reuse_detection(server, admin, oidc):
    c = Client(server, admin, access_token_format="opaque")
    assign(server, admin, c, oidc["user"]["id"])
    _, t1, _, _ = code_flow(server, c)
    assert "." not in t1["access_token"]
    r = token(server, c, {"grant_type": "refresh_token",
                          "refresh_token": t1["refresh_token"]})
    assert r.status_code == 200, r.text
    t2 = r.json()
    assert t2["refresh_token"] != t1["refresh_token"]
    verify(server, t2["id_token"])
    hdr = {"Authorization": f"Bearer {t2['access_token']}"}
    assert requests_get(server, "/oidc/userinfo", headers=hdr).status_code \
        == 200
    # The old refresh token comes back: the family is revoked.
    r = token(server, c, {"grant_type": "refresh_token",
                          "refresh_token": t1["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert requests_get(server, "/oidc/userinfo", headers=hdr).status_code \
        == 401
    r = token(server, c, {"grant_type": "refresh_token",
                          "refresh_token": t2["refresh_token"]})
    assert r.json()["error"] == "invalid_grant"
    # Only digests are stored.
    assert set(col(server, "SELECT length(digest) FROM oidc_tokens WHERE "
                   "digest IS NOT NULL")) == {32}


def test_client_authentication_and_grant_errors(server, admin, oidc):
    c = Client(server, admin, token_endpoint_auth_method="client_secret_post")
    import requests
    url = issuer(server) + "/oidc/token"
    cc = {"grant_type": "client_credentials"}
    # Registered for post: basic is refused, post works.
    r = requests.post(url, data=cc, auth=(c.id, c.secret), timeout=30)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = requests.post(url, data=dict(cc, client_id=c.id,
                                     client_secret=c.secret + "x"),
                      timeout=30)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = requests.post(url, data=dict(cc, client_id=c.id), timeout=30)
    assert r.status_code == 401
    r = requests.post(url, data={"grant_type": "password", "client_id": c.id,
                                 "client_secret": c.secret}, timeout=30)
    assert r.json()["error"] == "unsupported_grant_type"
    r = requests.post(url, data={"client_id": c.id,
                                 "client_secret": c.secret}, timeout=30)
    assert r.json()["error"] == "invalid_request"
    r = requests.post(url, data=dict(cc, client_id=c.id,
                                     client_secret=c.secret,
                                     scope="api:read"), timeout=30)
    assert r.status_code == 200, r.text
    at = verify(server, r.json()["access_token"], typ="at+jwt")
    assert at["sub"] == c.id and at["scope"] == "api:read"
    assert "id_token" not in r.json() and "refresh_token" not in r.json()
    # A client without the grant type.
    c2 = Client(server, admin, grant_types=["authorization_code"])
    r = requests.post(url, data=cc, auth=(c2.id, c2.secret), timeout=30)
    assert r.json()["error"] == "unauthorized_client"


def test_basic_credentials_are_form_decoded(server, admin):
    """RFC 6749 2.3.1: client_secret_basic form-encodes the id and secret
    before base64 (openid-client does, escaping even '-' and '_'); plain
    values keep working; bad escapes are refused."""
    import requests
    c = Client(server, admin)
    url = issuer(server) + "/oidc/token"
    cc = {"grant_type": "client_credentials"}

    def basic(user, password):
        raw = f"{user}:{password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def every_byte(s):
        return "".join(f"%{ord(ch):02X}" for ch in s)

    for user, password in [(c.id, c.secret),
                           (every_byte(c.id), every_byte(c.secret)),
                           (c.id, c.secret.replace("-", "%2D")
                            .replace("_", "%5f"))]:
        r = requests.post(url, data=cc, headers=basic(user, password),
                          timeout=30)
        assert r.status_code == 200, (user, password, r.text)
    for user, password in [(c.id, c.secret + "%"), (c.id, c.secret + "%zz"),
                           (c.id, c.secret + "%00"), (c.id + "%", c.secret),
                           (c.id, c.secret + "+")]:
        r = requests.post(url, data=cc, headers=basic(user, password),
                          timeout=30)
        assert r.status_code == 401, (user, password, r.text)
        assert r.json()["error"] == "invalid_client"


def assertion(key, client_id, aud, **over):
    claims = {"iss": client_id, "sub": client_id, "aud": aud,
              "jti": secrets.token_hex(8), "exp": int(time.time()) + 120}
    claims.update(over)
    t = jwt.JWT(header={"alg": "ES256", "kid": key.get("kid")}, claims=claims)
    t.make_signed_token(key)
    return t.serialize()


def test_private_key_jwt_client_authentication(server, admin):
    key = jwk.JWK.generate(kty="EC", crv="P-256", kid="k1")
    pub = json.loads(key.export_public())
    pub["alg"] = "ES256"
    r = admin.post(server.api("/apps"), json={"name": "pkjwt",
                                              "kind": "oidc"}, timeout=30)
    cid = r.json()["id"]
    bad = dict(pub, d="AAAA")
    r = admin.put(server.api(f"/apps/{cid}/oidc"), json={
        "redirect_uris": [RP], "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [bad]}}, timeout=30)
    assert r.status_code == 400
    r = admin.put(server.api(f"/apps/{cid}/oidc"), json={
        "redirect_uris": [RP], "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [pub]}}, timeout=30)
    assert r.status_code == 200, r.text
    import requests
    url = issuer(server) + "/oidc/token"
    typ = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

    def post(a, **extra):
        return requests.post(url, data=dict(
            grant_type="client_credentials", client_assertion_type=typ,
            client_assertion=a, **extra), timeout=30)

    good = assertion(key, cid, url)
    r = post(good)
    assert r.status_code == 200, r.text
    assert verify(server, r.json()["access_token"])["sub"] == cid
    # Each assertion once.
    r = post(good)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    other = jwk.JWK.generate(kty="EC", crv="P-256", kid="k1")
    head = b64url(json.dumps({"alg": "none", "kid": "k1"}).encode())
    body = b64url(json.dumps({"iss": cid, "sub": cid, "aud": url,
                              "jti": "x1", "exp": int(time.time()) + 60})
                  .encode())
    hs = jwt.JWT(header={"alg": "HS256", "kid": "k1"}, claims={
        "iss": cid, "sub": cid, "aud": url, "jti": "x2",
        "exp": int(time.time()) + 60})
    hs.make_signed_token(jwk.JWK(kty="oct", k=b64url(
        json.dumps(pub).encode())))
    for a in (assertion(other, cid, url),                # wrong key
              assertion(key, cid, "https://elsewhere/"),  # wrong aud
              assertion(key, cid, url, exp=int(time.time()) - 5),
              assertion(key, cid, url, exp=int(time.time()) + 3600),
              assertion(key, cid, url, sub="0" * 32),
              head + "." + body + ".",                    # alg none
              hs.serialize()):                            # confusion
        r = post(a)
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "invalid_client"
    r = post(assertion(key, cid, url), client_secret="x")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_introspection_and_revocation(server, admin, oidc):
    c = Client(server, admin)
    rs = Client(server, admin)        # a resource server
    assign(server, admin, c, oidc["user"]["id"])
    _, t, _, _ = code_flow(server, c)
    import requests
    intro = issuer(server) + "/oidc/introspect"
    r = requests.post(intro, data={"token": t["access_token"]},
                      auth=(rs.id, rs.secret), timeout=30)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["active"] is True and j["client_id"] == c.id
    assert j["sub"] == oidc["user"]["id"]
    r = requests.post(intro, data={"token": t["refresh_token"]},
                      auth=(rs.id, rs.secret), timeout=30)
    assert r.json()["active"] is True
    assert r.json()["token_type"] == "refresh_token"
    # No client authentication: refused.
    r = requests.post(intro, data={"token": t["access_token"]}, timeout=30)
    assert r.status_code == 401
    # Tampered and alg-none tokens are not ours.
    head, body, sig = t["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = "0" * 32
    forged = head + "." + b64url(json.dumps(claims).encode()) + "." + sig
    none = b64url(b'{"alg":"none","typ":"at+jwt"}') + "." + body + "."
    confused = b64url(json.dumps({"alg": "HS256", "typ": "at+jwt",
                                  "kid": jwt.JWT(jwt=t["access_token"])
                                  .token.jose_header["kid"]})
                      .encode()) + "." + body + "." + sig
    for bad in (forged, none, confused, t["access_token"][:-4] + "AAAA"):
        r = requests.post(intro, data={"token": bad},
                          auth=(rs.id, rs.secret), timeout=30)
        assert r.json() == {"active": False}
        r = requests_get(server, "/oidc/userinfo",
                         headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    # Another client's revocation does nothing; the owner's works.
    rev = issuer(server) + "/oidc/revoke"
    r = requests.post(rev, data={"token": t["refresh_token"]},
                      auth=(rs.id, rs.secret), timeout=30)
    assert r.status_code == 200
    assert requests.post(intro, data={"token": t["refresh_token"]},
                         auth=(rs.id, rs.secret),
                         timeout=30).json()["active"] is True
    r = requests.post(rev, data={"token": t["refresh_token"]},
                      auth=(c.id, c.secret), timeout=30)
    assert r.status_code == 200
    for tok in (t["refresh_token"], t["access_token"]):
        assert requests.post(intro, data={"token": tok},
                             auth=(rs.id, rs.secret),
                             timeout=30).json()["active"] is False
    r = requests.post(rev, data={"token": "unknown"}, auth=(c.id, c.secret),
                      timeout=30)
    assert r.status_code == 200
    assert col(server, "SELECT count(*) FROM audit_events WHERE action = "
               "'oidc.token.revoke'")[0] >= 1


def test_rp_initiated_logout(server, admin, oidc):
    c = Client(server, admin)
    assign(server, admin, c, oidc["user"]["id"])
    s, t, _, _ = code_flow(server, c)
    lo = issuer(server) + "/oidc/logout"
    # Without a hint: a question, not a sign-out.
    r = s.get(lo, allow_redirects=False, timeout=30)
    assert r.status_code == 200 and "Sign out?" in r.text
    assert f'action="/o/{server.org}/logout"' in r.text
    r = s.get(issuer(server) + "/account", allow_redirects=False, timeout=30)
    assert r.status_code == 200
    r = s.get(lo, params={"id_token_hint": t["id_token"],
                          "post_logout_redirect_uri": "http://127.0.0.1:9/x"},
              allow_redirects=False, timeout=30)
    assert r.status_code == 400 and "Location" not in r.headers
    r = s.get(lo, params={"id_token_hint": t["id_token"],
                          "post_logout_redirect_uri": POST_LOGOUT,
                          "state": "bye"},
              allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303)
    assert r.headers["Location"] == POST_LOGOUT + "?state=bye"
    # The session is gone and the tokens bound to it too.
    r = s.get(issuer(server) + "/account", allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303) and "/login" in r.headers["Location"]
    r = requests_get(server, "/oidc/userinfo",
                     headers={"Authorization": f"Bearer {t['access_token']}"})
    assert r.status_code == 401


def test_token_endpoint_is_rate_limited(server_factory):
    srv = server_factory(serve_env={"GATEHOUSE_SIGNIN_RATE_IP_PER_MIN": "3"})
    import requests
    codes = [requests.post(f"{issuer(srv)}/oidc/token",
                           data={"grant_type": "client_credentials"},
                           timeout=30).status_code for _ in range(6)]
    assert 429 in codes


DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


def test_device_authorization_grant(server, admin, oidc):
    import html
    import requests
    c = Client(server, admin, client_type="public",
               token_endpoint_auth_method="none",
               grant_types=[DEVICE, "refresh_token"])
    assign(server, admin, c, oidc["user"]["id"])
    url = issuer(server)
    d = requests.post(url + "/oidc/device_authorization",
                      data={"client_id": c.id, "scope": "openid email"},
                      timeout=30).json()
    assert re.fullmatch(r"[B-Z]{4}-[B-Z]{4}", d["user_code"])
    assert d["verification_uri"] == url + "/oidc/device"
    assert d["interval"] == 5 and d["expires_in"] == 600

    def poll():
        return requests.post(url + "/oidc/token", data={
            "grant_type": DEVICE, "device_code": d["device_code"],
            "client_id": c.id}, timeout=30)

    r = poll()
    assert r.status_code == 400
    assert r.json()["error"] == "authorization_pending"
    assert poll().json()["error"] == "slow_down"
    # The user signs in on another device and allows.
    s = server.new_session()
    r = s.get(d["verification_uri_complete"], timeout=30)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = s.post(url + "/login", data={"username": "alice",
                                     "password": USER_PASSWORD,
                                     "csrf_token": csrf}, timeout=30)
    assert r.status_code == 200 and "Connect a device" in r.text, r.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = s.post(url + "/oidc/device", data={
        "csrf_token": csrf, "user_code": "ZZZZ-ZZZZ", "decision": "allow"},
        timeout=30)
    assert r.status_code == 400
    r = s.post(url + "/oidc/device", data={
        "csrf_token": "x" * 43, "user_code": d["user_code"],
        "decision": "allow"}, timeout=30)
    assert r.status_code == 403
    r = s.post(url + "/oidc/device", data={
        "csrf_token": html.unescape(csrf),
        "user_code": d["user_code"].lower().replace("-", " "),
        "decision": "allow"}, timeout=30)
    assert r.status_code == 200 and "Device connected" in r.text
    time.sleep(5.1)
    r = poll()
    assert r.status_code == 200, r.text
    t = r.json()
    idt = verify(server, t["id_token"])
    assert idt["sub"] == oidc["user"]["id"] and idt["email"] == \
        "alice@example.com"
    assert "refresh_token" in t
    assert poll().json()["error"] == "invalid_grant"
    # A denial reaches the device as access_denied.
    d = requests.post(url + "/oidc/device_authorization",
                      data={"client_id": c.id}, timeout=30).json()
    r = s.post(url + "/oidc/device", data={
        "csrf_token": html.unescape(csrf), "user_code": d["user_code"],
        "decision": "deny"}, timeout=30)
    assert "Access denied" in r.text
    assert poll().json()["error"] == "access_denied"
    # Clients without the grant type may not start one.
    c2 = Client(server, admin)
    r = requests.post(url + "/oidc/device_authorization",
                      auth=(c2.id, c2.secret), timeout=30)
    assert r.json()["error"] == "unauthorized_client"
