"""The OpenID provider's fast paths: in-process caches (src/api/oidc_keys.c)
of loaded signing and verifying keys per (org, kid) and of the serialised
discovery document per issuer, and the group commit of client credentials
tokens (src/api/batch.c). The database still decides which key signs and
which keys verify, so rotation and retirement take effect on the next
request even when the old key is cached; every token answered is stored
and audited."""
import json
from concurrent.futures import ThreadPoolExecutor

import requests

from test_oidc import Client, col, issuer, requests_get


def cc_token(srv, c):
    r = requests.post(issuer(srv) + "/oidc/token",
                      data={"grant_type": "client_credentials"},
                      auth=c.auth, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def kid_of(token):
    import base64
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=="))["kid"]


def introspect(srv, c, token):
    r = requests.post(issuer(srv) + "/oidc/introspect",
                      data={"token": token}, auth=c.auth, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_cached_keys_follow_rotation_and_retirement(server_factory):
    srv = server_factory(serve_env={"GATEHOUSE_OIDC_KEY_PUBLISH_DELAY_S": "0"})
    admin = srv.login()
    c = Client(srv, admin)
    t1 = cc_token(srv, c)
    kid1 = kid_of(t1)
    # The same key signs again (from the cache) and verifies (cached too).
    assert kid_of(cc_token(srv, c)) == kid1
    assert introspect(srv, c, t1)["active"] is True
    assert introspect(srv, c, t1)["active"] is True
    r = admin.post(srv.api("/oidc/keys/rotate"), timeout=30)
    assert r.status_code == 201, r.text
    kid2 = r.json()["keys"][0]["kid"]
    # The next token is signed by the new key although the old one is
    # cached, and both verify.
    t2 = cc_token(srv, c)
    assert kid_of(t2) == kid2 != kid1
    assert introspect(srv, c, t2)["active"] is True
    assert introspect(srv, c, t1)["active"] is True
    # A retired key no longer verifies, cached or not.
    srv.query("UPDATE oidc_keys SET retires_at = 1 WHERE kid = ?", (kid1,))
    assert introspect(srv, c, t1) == {"active": False}
    assert introspect(srv, c, t2)["active"] is True
    # Every token issued was audited, cached key or not.
    assert col(srv, "SELECT count(*) FROM audit_events WHERE action = "
               "'oidc.token.issue'")[0] == 3


def test_discovery_is_the_same_document_each_time_per_org(server):
    first = requests_get(server, "/.well-known/openid-configuration")
    again = requests_get(server, "/.well-known/openid-configuration")
    assert first.status_code == again.status_code == 200
    assert first.headers["Content-Type"].startswith("application/json")
    assert first.content == again.content
    d = again.json()
    assert d["issuer"] == issuer(server)
    assert d["token_endpoint"] == issuer(server) + "/oidc/token"
    assert d["jwks_uri"] == issuer(server) + "/oidc/jwks"
    # An unknown org is still a 404, not a cached document.
    r = requests.get(f"{server.base}/o/nosuchorg/.well-known/"
                     "openid-configuration", timeout=30)
    assert r.status_code == 404


def test_concurrent_client_credentials_are_all_stored_and_audited(
        server_factory):
    # Eight HTTP threads, so that several requests share a commit.
    srv = server_factory(serve_env={"GATEHOUSE_HTTP_THREADS": "8"})
    admin = srv.login()
    c = Client(srv, admin)
    n = 64
    with ThreadPoolExecutor(max_workers=16) as ex:
        tokens = list(ex.map(lambda _: cc_token(srv, c), range(n)))
    jtis = set()
    for t in tokens:
        body = t.split(".")[1]
        import base64
        jtis.add(json.loads(base64.urlsafe_b64decode(body + "=="))["jti"])
    assert len(jtis) == n
    rows = col(srv, "SELECT id FROM oidc_tokens WHERE client_id = ? AND "
               "kind = 'access'", (c.id,))
    assert set(rows) == jtis
    events = srv.query("SELECT target_id, changes FROM audit_events WHERE "
                       "action = 'oidc.token.issue'")
    assert len(events) == n
    assert all(e["target_id"] == c.id for e in events)
    families = {json.loads(e["changes"])["family"] for e in events}
    assert len(families) == n
    for t in tokens[:4]:
        assert introspect(srv, c, t)["active"] is True
    # A revoked one is inactive at once.
    r = requests.post(issuer(srv) + "/oidc/revoke", data={"token": tokens[0]},
                      auth=c.auth, timeout=30)
    assert r.status_code == 200
    assert introspect(srv, c, tokens[0]) == {"active": False}
    assert introspect(srv, c, tokens[1])["active"] is True


def jti_of(token):
    import base64
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=="))["jti"]


# The token endpoint shares the sign-in rate limits: off for the load.
NO_LIMITS = {"GATEHOUSE_SIGNIN_RATE_IP_PER_MIN": "0",
             "GATEHOUSE_SIGNIN_RATE_ORG_PER_MIN": "0"}


def test_parked_client_credentials_under_64_threads(server_factory):
    # The token requests park their connections (src/api/batch.c): far
    # more requests in flight than HTTP threads; every token answered is
    # stored, audited once and active, and nothing else was written.
    server = server_factory(serve_env=NO_LIMITS)
    c = Client(server, server.login())
    n = 192
    with ThreadPoolExecutor(max_workers=64) as ex:
        tokens = list(ex.map(lambda _: cc_token(server, c), range(n)))
    jtis = {jti_of(t) for t in tokens}
    assert len(jtis) == n
    rows = col(server, "SELECT id FROM oidc_tokens WHERE client_id = ? AND "
               "kind = 'access'", (c.id,))
    assert sorted(rows) == sorted(jtis)
    events = server.query("SELECT target_id, request_id FROM audit_events "
                          "WHERE action = 'oidc.token.issue'")
    assert len(events) == n
    assert all(e["target_id"] == c.id for e in events)
    assert len({e["request_id"] for e in events}) == n
    with ThreadPoolExecutor(max_workers=64) as ex:
        states = list(ex.map(lambda t: introspect(server, c, t), tokens))
    assert all(s["active"] is True and s["client_id"] == c.id
               for s in states)


def test_failed_group_commit_answers_every_request_without_a_token(
        server_factory):
    server = server_factory(serve_env=NO_LIMITS)
    c = Client(server, server.login())
    assert introspect(server, c, cc_token(server, c))["active"] is True
    # Every token row now fails to insert: the writes of each parked
    # request are undone, and each is answered 500 with no token.
    server.query("CREATE TRIGGER no_tokens BEFORE INSERT ON oidc_tokens "
                 "BEGIN SELECT RAISE(ABORT, 'no'); END")

    def post(_):
        return requests.post(issuer(server) + "/oidc/token",
                             data={"grant_type": "client_credentials"},
                             auth=c.auth, timeout=30)
    with ThreadPoolExecutor(max_workers=32) as ex:
        answers = list(ex.map(post, range(64)))
    assert {r.status_code for r in answers} == {500}
    assert not any("access_token" in r.text for r in answers)
    assert col(server, "SELECT count(*) FROM oidc_tokens")[0] == 1
    assert col(server, "SELECT count(*) FROM audit_events WHERE action = "
               "'oidc.token.issue'")[0] == 1
    server.query("DROP TRIGGER no_tokens")
    assert introspect(server, c, cc_token(server, c))["active"] is True


def test_stopping_with_token_requests_in_flight_does_not_hang(
        server_factory):
    import threading
    srv = server_factory(serve_env=NO_LIMITS)
    c = Client(srv, srv.login())
    stop = threading.Event()
    outcomes = []

    def hammer():
        s = requests.Session()
        while not stop.is_set():
            try:
                r = s.post(issuer(srv) + "/oidc/token",
                           data={"grant_type": "client_credentials"},
                           auth=c.auth, timeout=30)
                outcomes.append(r.status_code)
            except requests.RequestException:
                outcomes.append(None)
                return
    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for t in threads:
        t.start()
    while len(outcomes) < 50:
        import time
        time.sleep(0.05)
    # stop() fails the test when serve takes too long or exits unclean.
    assert srv.stop() == 0
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert 200 in outcomes
    assert set(outcomes) <= {200, 503, None}


def test_client_changes_take_effect_on_the_next_request(server):
    # The parsed settings of a client are remembered (oidc_clients.c);
    # the database still decides, request by request.
    admin = server.login()
    c = Client(server, admin)
    c2 = Client(server, admin)
    t = cc_token(server, c)
    assert introspect(server, c, t)["active"] is True
    cc_token(server, c2)
    r = admin.put(server.api(f"/apps/{c.id}/oidc"), json={
        "redirect_uris": ["https://rp.example/cb"],
        "grant_types": ["authorization_code"],
        "access_token_lifetime_s": 120}, timeout=30)
    assert r.status_code == 200, r.text
    r = requests.post(issuer(server) + "/oidc/token",
                      data={"grant_type": "client_credentials"},
                      auth=c.auth, timeout=30)
    assert r.status_code == 400
    assert r.json()["error"] == "unauthorized_client"
    # The other client's settings are its own.
    assert cc_token(server, c2)
    r = admin.put(server.api(f"/apps/{c.id}/oidc"), json={
        "redirect_uris": ["https://rp.example/cb"],
        "grant_types": ["client_credentials"],
        "access_token_lifetime_s": 120}, timeout=30)
    assert r.status_code == 200, r.text
    r = requests.post(issuer(server) + "/oidc/token",
                      data={"grant_type": "client_credentials"},
                      auth=c.auth, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["expires_in"] == 120
    # A new secret: the old one fails at once, the new one works.
    old = c.auth
    r = admin.post(server.api(f"/apps/{c.id}/oidc/secret"), timeout=30)
    assert r.status_code == 201, r.text
    c.secret = r.json()["client_secret"]
    assert introspect(server, c, t)["active"] is True
    r = requests.post(issuer(server) + "/oidc/introspect", data={"token": t},
                      auth=old, timeout=30)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
