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
