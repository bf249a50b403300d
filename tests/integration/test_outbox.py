"""The outbox senders (mail, OpenID Connect back-channel logout) find the
organisations with work through the directory's outbox hints, written
before the row is queued: rows queued by the CLI in another process are
sent by the running server within seconds, and a restarted server sends
what was left pending without opening the organisations that have
nothing to send (docs/api.md, Back-channel logout and Notifications)."""

import re
import time

from conftest import USER_PASSWORD
from test_mfa import enrol
from test_notifications import sink, wait_mail  # noqa: F401 (fixture)
from test_oidc import code_flow, verify
from test_oidc_backchannel import (bcl_client, logout_claims, receiver,  # noqa: F401
                                   wait_audits)


def hints(server, kind):
    return {r["org_id"]: r for r in server.query(
        "SELECT org_id, seq, at, pending FROM outbox_hints WHERE kind = ?",
        (kind,), db=server.directory_db())}


def test_logouts_queued_by_the_cli_are_sent_by_the_running_server(
        server, admin, receiver):
    alice = server.create_user(admin, "alice", USER_PASSWORD)
    c = bcl_client(server, admin, alice["id"], receiver.uri)
    s = server.login("alice", USER_PASSWORD)
    _, t, _, _ = code_flow(server, c, s=s)
    sid = verify(server, t["id_token"])["sid"]
    assert hints(server, "bcl") == {}
    # Another process ends the session: no kick reaches the server.
    started = time.monotonic()
    server.cli("user", "disable", "--org", server.org, "alice")
    org_id = server.org_row()["id"]
    h = hints(server, "bcl")
    assert list(h) == [org_id] and h[org_id]["pending"] == 1
    post = receiver.next(timeout=15)
    # Found by the hint poll (every 2 s), not by a 5-minute scan.
    assert post["at"] - started < 10
    claims = logout_claims(server, post, c)
    assert (claims["sub"], claims["sid"]) == (alice["id"], sid)
    assert [a["result"] for a in wait_audits(server, c.id, 1)] == \
        ["delivered"]
    assert server.query("SELECT * FROM oidc_logout_outbox") == []


def test_restarted_server_sends_what_was_pending_and_opens_only_hinted_orgs(
        server_factory, sink, receiver):  # noqa: F811
    srv = server_factory()          # no SMTP yet: mail stays pending
    adm = srv.login()
    alice = srv.create_user(adm, "alice", USER_PASSWORD)
    carol = srv.create_user(adm, "carol", USER_PASSWORD,
                            email="carol@acme.test")
    c = bcl_client(srv, adm, alice["id"], receiver.uri)
    s = srv.login("alice", USER_PASSWORD)
    _, t, _, _ = code_flow(srv, c, s=s)
    sid = verify(srv, t["id_token"])["sid"]
    enrol(srv, srv.login("carol", USER_PASSWORD))
    r = adm.delete(srv.api(f"/users/{carol['id']}/mfa"))
    assert r.status_code == 204, r.text
    srv.stop()
    # While it is down: a logout queued by the CLI, and organisations
    # that have nothing to send.
    srv.cli("user", "disable", "--org", srv.org, "alice")
    others = []
    for slug in ("beta", "gamma", "delta"):
        srv.cli("org", "create", slug)
        others.append(srv.org_row(slug)["id"])
    acme = srv.org_row()["id"]
    assert set(hints(srv, "bcl")) == {acme}
    assert set(hints(srv, "mail")) == {acme}
    pending = srv.query("SELECT mail_state FROM notifications WHERE kind = "
                        "'mfa_reset'")
    assert pending == [{"mail_state": "pending"}]

    srv.start(env={"GATEHOUSE_SMTP_HOST": "127.0.0.1",
                   "GATEHOUSE_SMTP_PORT": str(sink.port),
                   "GATEHOUSE_SMTP_FROM": "gatehouse@acme.test",
                   "GATEHOUSE_LOG_LEVEL": "debug"})
    claims = logout_claims(srv, receiver.next(timeout=15), c)
    assert claims["sid"] == sid
    wait_mail(sink, "carol@acme.test", "second factors were reset")
    end = time.time() + 10
    while time.time() < end and srv.query(
            "SELECT * FROM notifications WHERE mail_state = 'pending'"):
        time.sleep(0.2)
    assert srv.query("SELECT * FROM oidc_logout_outbox") == []
    # Both senders looked at acme alone (the CLI's own opens go to its
    # output, not to the server's log).
    opened = set(re.findall(r"org ([0-9a-f]{32}): database opened",
                            srv.log()))
    assert acme in opened
    assert opened.isdisjoint(others), opened
