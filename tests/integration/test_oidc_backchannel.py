"""OpenID Connect Back-Channel Logout 1.0 (docs/api.md "Back-channel
logout"): client settings, discovery, the sid claim of ID tokens, and the
logout tokens posted to a real HTTP receiver on a loopback port when a
session ends (RP-initiated logout, the user ending their own session, an
admin disabling the user), with retries on 5xx and none on 4xx. Logout
tokens are verified with python3-jwcrypto against the published JWKS."""

import datetime
import ipaddress
import json
import queue
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from jwcrypto import jwt

from conftest import USER_PASSWORD
from test_oidc import (Client, assign, code_flow, issuer, jwks,
                       requests_get, verify)

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class Receiver:
    """A client's back-channel logout endpoint: records each POST and
    answers with the next scripted status (200 once the script is used
    up)."""

    def __init__(self, statuses=(), tls=None):
        self.posts = queue.Queue()
        self.statuses = list(statuses)
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n).decode()
                rx.posts.put({"path": self.path, "body": body,
                              "type": self.headers.get("Content-Type"),
                              "at": time.monotonic()})
                status = rx.statuses.pop(0) if rx.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:     # (certificate file, key file)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                                server_side=True)
            scheme = "https"
        self.uri = f"{scheme}://127.0.0.1:{self.httpd.server_port}/bcl?x=1"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def next(self, timeout=15):
        try:
            return self.posts.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("no back-channel logout request arrived")

    def none_within(self, seconds):
        try:
            got = self.posts.get(timeout=seconds)
        except queue.Empty:
            return True
        pytest.fail(f"unexpected back-channel logout request: {got}")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    rx = Receiver()
    yield rx
    rx.close()


@pytest.fixture
def alice(server, admin):
    return server.create_user(admin, "alice", USER_PASSWORD,
                              email="alice@example.com")


def bcl_client(server, admin, user_id, uri, **extra):
    c = Client(server, admin, backchannel_logout_uri=uri, **extra)
    assign(server, admin, c, user_id)
    return c


def logout_claims(server, post, client):
    """Checks the request and the token's signature and claims; returns
    the claims."""
    assert post["path"] == "/bcl?x=1"
    assert post["type"] == "application/x-www-form-urlencoded"
    form = parse_qs(post["body"])
    assert list(form) == ["logout_token"]
    tok = form["logout_token"][0]
    t = jwt.JWT(jwt=tok, key=jwks(server), algs=["ES256"])
    assert json.loads(t.header)["typ"] == "logout+jwt"
    claims = json.loads(t.claims)
    assert claims["iss"] == issuer(server)
    assert claims["aud"] == client.id
    assert claims["events"] == {EVENT: {}}
    assert "nonce" not in claims
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert abs(claims["iat"] - time.time()) < 60
    assert len(claims["jti"]) >= 16
    return claims


def current_sid(server, s):
    """The public id of the session s signs in with."""
    r = s.get(server.api("/me/sessions"), timeout=30)
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["sessions"] if x["current"]][0]


def audits(server, client_id):
    rows = server.query("SELECT changes FROM audit_events WHERE action = "
                        "'oidc.backchannel_logout' AND target_id = ? "
                        "ORDER BY seq", (client_id,))
    return [json.loads(r["changes"]) for r in rows]


def wait_audits(server, client_id, n, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        a = audits(server, client_id)
        if len(a) >= n:
            return a
        time.sleep(0.2)
    pytest.fail(f"expected {n} audit events, got {audits(server, client_id)}")


def test_discovery_advertises_backchannel_logout(server):
    d = requests_get(server, "/.well-known/openid-configuration").json()
    assert d["backchannel_logout_supported"] is True
    assert d["backchannel_logout_session_supported"] is True
    assert "sid" in d["claims_supported"]


def test_client_settings_check_the_backchannel_uri(server, admin):
    c = Client(server, admin)
    assert c.settings["backchannel_logout_uri"] is None
    assert c.settings["backchannel_logout_session_required"] is False
    url = server.api(f"/apps/{c.id}/oidc")
    base = {"redirect_uris": ["http://127.0.0.1:9/cb"]}
    for bad in ["ftp://rp.example/bcl", "http://rp.example/bcl",
                "https://rp.example/bcl#frag", "/relative", "https://",
                "https://rp.example/a b", 42, ["https://rp.example/"]]:
        r = admin.put(url, json=dict(base, backchannel_logout_uri=bad),
                      timeout=30)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"] == "invalid_request"
        assert "backchannel_logout_uri" in r.json()["message"]
    r = admin.put(url, json=dict(
        base, backchannel_logout_session_required="yes"), timeout=30)
    assert r.status_code == 400
    assert "backchannel_logout_session_required" in r.json()["message"]
    r = admin.put(url, json=dict(
        base, backchannel_logout_uri="https://rp.example/logout?a=1",
        backchannel_logout_session_required=True), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["backchannel_logout_uri"] == \
        "https://rp.example/logout?a=1"
    assert r.json()["backchannel_logout_session_required"] is True
    assert admin.get(url, timeout=30).json()["backchannel_logout_uri"] == \
        "https://rp.example/logout?a=1"


def test_rp_initiated_logout_posts_a_logout_token(server, admin, alice,
                                                  receiver):
    c = bcl_client(server, admin, alice["id"], receiver.uri)
    quiet = Client(server, admin)       # no backchannel_logout_uri
    assign(server, admin, quiet, alice["id"])
    s = server.login("alice", USER_PASSWORD)
    _, t, _, _ = code_flow(server, c, s=s)
    _, t2, _, _ = code_flow(server, quiet, s=s)
    idt = verify(server, t["id_token"])
    # sid is the session's public id (what /me/sessions lists), not the
    # cookie.
    assert idt["sid"] == current_sid(server, s) != s.cookie
    assert verify(server, t2["id_token"])["sid"] == idt["sid"]

    r = s.get(issuer(server) + "/oidc/logout",
              params={"id_token_hint": t["id_token"]},
              allow_redirects=False, timeout=30)
    assert r.status_code == 200 and "signed out" in r.text
    claims = logout_claims(server, receiver.next(), c)
    assert claims["sub"] == alice["id"] == idt["sub"]
    assert claims["sid"] == idt["sid"]
    a = wait_audits(server, c.id, 1)
    assert a == [{"client_id": c.id, "session_id": idt["sid"],
                  "result": "delivered", "attempt": 1, "status": 200}]
    # The client without a URI got nothing, and nothing waits for it.
    receiver.none_within(1)
    assert audits(server, quiet.id) == []
    assert server.query("SELECT * FROM oidc_logout_outbox") == []


def test_ending_own_session_posts_a_logout_token(server, admin, alice,
                                                 receiver):
    # The client requires sid (Back-Channel Logout 1.0, 2.2): the flag is
    # echoed, and the ID and logout tokens carry sid (always sent).
    c = bcl_client(server, admin, alice["id"], receiver.uri,
                   backchannel_logout_session_required=True)
    assert c.settings["backchannel_logout_session_required"] is True
    assert admin.get(server.api(f"/apps/{c.id}/oidc"), timeout=30).json()[
        "backchannel_logout_session_required"] is True
    s = server.login("alice", USER_PASSWORD)
    _, t, _, _ = code_flow(server, c, s=s)
    sid = verify(server, t["id_token"])["sid"]
    assert sid == current_sid(server, s)
    # A second session of alice's, without tokens, ends the first one.
    other = server.login("alice", USER_PASSWORD)
    r = other.delete(server.api(f"/me/sessions/{sid}"), timeout=30)
    assert r.status_code == 204, r.text
    claims = logout_claims(server, receiver.next(), c)
    assert "sid" in claims
    assert (claims["sub"], claims["sid"]) == (alice["id"], sid)
    # Ending a session in which no client got tokens sends nothing.
    r = other.delete(server.api(f"/me/sessions/{current_sid(server, other)}"),
                     timeout=30)
    assert r.status_code == 204, r.text
    receiver.none_within(1.5)


def test_disabling_the_user_logs_out_every_session(server, admin, alice,
                                                   receiver):
    c = bcl_client(server, admin, alice["id"], receiver.uri)
    sids = set()
    for _ in range(2):
        s = server.login("alice", USER_PASSWORD)
        _, t, _, _ = code_flow(server, c, s=s)
        sids.add(verify(server, t["id_token"])["sid"])
    assert len(sids) == 2
    r = admin.post(server.api(f"/users/{alice['id']}/disable"), timeout=30)
    assert r.status_code == 200, r.text
    got = {logout_claims(server, receiver.next(), c)["sid"]
           for _ in range(2)}
    assert got == sids
    receiver.none_within(1)
    assert {a["result"] for a in wait_audits(server, c.id, 2)} == \
        {"delivered"}


def test_deleting_the_user_logs_out(server, admin, alice, receiver):
    c = bcl_client(server, admin, alice["id"], receiver.uri)
    s = server.login("alice", USER_PASSWORD)
    _, t, _, _ = code_flow(server, c, s=s)
    sid = verify(server, t["id_token"])["sid"]
    r = admin.delete(server.api(f"/users/{alice['id']}"), timeout=30)
    assert r.status_code == 204, r.text
    claims = logout_claims(server, receiver.next(), c)
    assert (claims["sub"], claims["sid"]) == (alice["id"], sid)


def test_5xx_is_retried_and_4xx_is_not(server_factory):
    srv = server_factory(serve_env={
        "GATEHOUSE_OIDC_BACKCHANNEL_RETRY_S": "1"})
    adm = srv.login()
    user = srv.create_user(adm, "alice", USER_PASSWORD)
    flaky, refusing = Receiver([500, 503, 200]), Receiver([400])
    try:
        c1 = bcl_client(srv, adm, user["id"], flaky.uri)
        c2 = bcl_client(srv, adm, user["id"], refusing.uri)
        s = srv.login("alice", USER_PASSWORD)
        code_flow(srv, c1, s=s)
        code_flow(srv, c2, s=s)
        sid = current_sid(srv, s)
        r = s.delete(srv.api(f"/me/sessions/{sid}"), timeout=30)
        assert r.status_code == 204, r.text
        posts = [flaky.next() for _ in range(3)]
        tokens = [logout_claims(srv, p, c1) for p in posts]
        assert {t["sid"] for t in tokens} == {sid}
        assert len({t["jti"] for t in tokens}) == 3     # fresh each time
        # Doubling waits from 1 s: about 1 s, then about 2 s.
        assert posts[1]["at"] - posts[0]["at"] >= 0.9
        assert posts[2]["at"] - posts[1]["at"] >= 1.9
        a = wait_audits(srv, c1.id, 3)
        assert [(x["result"], x["attempt"], x["status"]) for x in a] == [
            ("retrying", 1, 500), ("retrying", 2, 503), ("delivered", 3, 200)]
        logout_claims(srv, refusing.next(), c2)
        refusing.none_within(2.5)
        a = wait_audits(srv, c2.id, 1)
        assert [(x["result"], x["status"]) for x in a] == [("rejected", 400)]
        assert srv.query("SELECT * FROM oidc_logout_outbox") == []
    finally:
        flaky.close()
        refusing.close()


def test_unreachable_receiver_is_given_up_after_5_attempts(server_factory):
    srv = server_factory(serve_env={
        "GATEHOUSE_OIDC_BACKCHANNEL_RETRY_S": "1"})
    adm = srv.login()
    user = srv.create_user(adm, "alice", USER_PASSWORD)
    rx = Receiver()
    dead = rx.uri
    rx.close()                          # nothing listens there now
    c = bcl_client(srv, adm, user["id"], dead)
    s = srv.login("alice", USER_PASSWORD)
    code_flow(srv, c, s=s)
    r = adm.post(srv.api(f"/users/{user['id']}/disable"), timeout=30)
    assert r.status_code == 200
    # Waits 1 + 2 + 4 + 8 s between the 5 attempts.
    a = wait_audits(srv, c.id, 5, timeout=30)
    assert [x["result"] for x in a] == ["retrying"] * 4 + ["failed"]
    assert all(x["status"] == 0 and "connect" in x["error"] for x in a)
    assert srv.query("SELECT * FROM oidc_logout_outbox") == []
    logs = srv.all_logs()
    assert "logout_token" not in logs and "eyJ" not in logs


def make_cert(path, name, issuer=None):
    """Writes name.pem and name.key under path: a certificate for
    127.0.0.1 signed by issuer (cert, key), or a CA when issuer is None."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject)
         .issuer_name(issuer[0].subject if issuer else subject)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1)))
    if issuer is None:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=0),
                            critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    cert = b.sign(issuer[1] if issuer else key, hashes.SHA256())
    (path / f"{name}.pem").write_bytes(
        cert.public_bytes(serialization.Encoding.PEM))
    (path / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert, key


def test_https_receivers_must_present_a_trusted_certificate(server_factory,
                                                            tmp_path):
    ca = make_cert(tmp_path, "ca")
    make_cert(tmp_path, "good", issuer=ca)
    make_cert(tmp_path, "rogue")        # self-signed, not trusted
    # OpenSSL's default trust store is replaced by the test CA.
    srv = server_factory(serve_env={
        "SSL_CERT_FILE": str(tmp_path / "ca.pem"),
        "SSL_CERT_DIR": str(tmp_path / "nothing"),
        "GATEHOUSE_OIDC_BACKCHANNEL_RETRY_S": "1"})
    adm = srv.login()
    user = srv.create_user(adm, "alice", USER_PASSWORD)
    good = Receiver(tls=(tmp_path / "good.pem", tmp_path / "good.key"))
    rogue = Receiver(tls=(tmp_path / "rogue.pem", tmp_path / "rogue.key"))
    try:
        c1 = bcl_client(srv, adm, user["id"], good.uri)
        c2 = bcl_client(srv, adm, user["id"], rogue.uri)
        assert c1.settings["backchannel_logout_uri"].startswith("https://")
        s = srv.login("alice", USER_PASSWORD)
        code_flow(srv, c1, s=s)
        code_flow(srv, c2, s=s)
        r = s.delete(srv.api(f"/me/sessions/{current_sid(srv, s)}"),
                     timeout=30)
        assert r.status_code == 204, r.text
        logout_claims(srv, good.next(), c1)
        a = wait_audits(srv, c2.id, 1)
        assert (a[0]["result"], a[0]["status"]) == ("retrying", 0)
        assert "certificate" in a[0]["error"], a[0]
        rogue.none_within(1)
    finally:
        good.close()
        rogue.close()
