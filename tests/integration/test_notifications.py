"""Account notices against the real binary (docs/api.md, Notifications):
recovery code use, an admin's MFA reset and factor changes reach the user
in the account feed and, with smtp_host set, by mail through a real SMTP
server (Python's smtpd) listening on loopback."""

import email
import email.policy
import threading
import time
import warnings

import pytest

from conftest import USER_PASSWORD, expect_error, free_port
from test_mfa import enrol, mfa_step, password_step

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import asyncore
    import smtpd


class Sink(smtpd.SMTPServer):
    """Keeps every message it accepts."""

    def __init__(self, port):
        super().__init__(("127.0.0.1", port), None, decode_data=False)
        self.messages = []

    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        msg = email.message_from_bytes(data, policy=email.policy.default)
        self.messages.append((mailfrom, rcpttos, msg))


@pytest.fixture
def sink():
    port = free_port()
    s = Sink(port)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            asyncore.loop(timeout=0.1, count=1)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    s.port = port
    yield s
    stop.set()
    t.join(5)
    s.close()


@pytest.fixture
def mail_server(server_factory, sink):
    return server_factory(serve_env={
        "GATEHOUSE_SMTP_HOST": "127.0.0.1",
        "GATEHOUSE_SMTP_PORT": str(sink.port),
        "GATEHOUSE_SMTP_FROM": "gatehouse@acme.test",
    })


def wait_mail(sink, to, subject, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        for frm, rcpts, msg in sink.messages:
            if to in rcpts and subject in msg["subject"]:
                return frm, msg
        time.sleep(0.1)
    raise AssertionError(f"no mail to {to}: {len(sink.messages)} in sink")


def notices(sess, server, **params):
    r = sess.get(server.api("/me/notifications"), params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_recovery_code_use_is_shown_and_mailed(mail_server, sink):
    server = mail_server
    admin = server.login()
    server.create_user(admin, "carol", password=USER_PASSWORD,
                       email="carol@acme.test")
    carol = server.login("carol", USER_PASSWORD)
    _, codes = enrol(server, carol)
    s, _ = password_step(server, "carol")
    r = mfa_step(server, s, "recovery", codes[0])
    assert r.status_code == 200, r.text

    feed = notices(s, server)
    kinds = [n["kind"] for n in feed["notifications"]]
    assert kinds[0] == "mfa_recovery_code_used", kinds
    assert "mfa_factor_added" in kinds       # the TOTP enrolment
    first = feed["notifications"][0]
    assert first["data"]["method"] == "recovery"
    assert first["data"]["source_ip"] == "127.0.0.1"
    assert first["read"] is False and feed["unread"] == len(kinds)

    frm, msg = wait_mail(sink, "carol@acme.test",
                         "A recovery code was used")
    assert frm == "gatehouse@acme.test"
    assert msg["subject"].startswith(f"[{server.org}] ")
    wait_mail(sink, "carol@acme.test", "A second factor was added")
    body = msg.get_content()
    assert "Hello carol," in body and "127.0.0.1" in body
    assert f"/o/{server.org}/account" in body
    # Never a code in a mail.
    for c in codes:
        assert c not in msg.as_string()
    rows = server.query("SELECT mail_state FROM notifications WHERE kind = "
                        "'mfa_recovery_code_used'")
    assert rows == [{"mail_state": "sent"}], rows


def test_admin_reset_notifies_the_user_and_names_the_admin(server, admin):
    server.create_user(admin, "dave", password=USER_PASSWORD)
    dave = server.login("dave", USER_PASSWORD)
    uid = dave.get(server.api("/me")).json()["user"]["id"]
    enrol(server, dave)
    r = admin.delete(server.api(f"/users/{uid}/mfa"))
    assert r.status_code == 204, r.text
    s, _ = password_step(server, "dave")
    feed = notices(s, server)
    reset = [n for n in feed["notifications"] if n["kind"] == "mfa_reset"]
    assert len(reset) == 1, feed
    assert reset[0]["data"]["by"] == server.admin
    # Without an e-mail address (and without SMTP) nothing is queued.
    rows = server.query("SELECT mail_state FROM notifications WHERE kind = "
                        "'mfa_reset'")
    assert rows == [{"mail_state": "none"}], rows


def test_notices_are_marked_read_by_their_owner_only(server, admin):
    server.create_user(admin, "erin", password=USER_PASSWORD)
    erin = server.login("erin", USER_PASSWORD)
    enrol(server, erin)
    r = erin.post(server.api("/me/mfa/recovery-codes"))
    assert r.status_code == 200
    feed = notices(erin, server)
    nid = feed["notifications"][0]["id"]
    # Another user cannot see or mark it.
    expect_error(admin.post(server.api("/me/notifications/read"),
                            json={"id": nid}), 404, "not_found")
    assert all(n["id"] != nid
               for n in notices(admin, server)["notifications"])
    r = erin.post(server.api("/me/notifications/read"), json={"id": nid})
    assert r.status_code == 200 and r.json()["marked"] == 1
    unread = notices(erin, server, unread="true")
    assert all(n["id"] != nid for n in unread["notifications"])
    assert unread["unread"] == len(unread["notifications"])
    r = erin.post(server.api("/me/notifications/read"))
    assert r.status_code == 200
    assert notices(erin, server)["unread"] == 0
    expect_error(erin.get(server.api("/me/notifications"),
                          params={"unread": "maybe"}), 400,
                 "invalid_request")
    expect_error(erin.get(server.api("/me/notifications"),
                          params={"limit": "0"}), 400, "invalid_request")
    expect_error(erin.post(server.api("/me/notifications/read"),
                           json={"id": 5}), 400, "invalid_request")
    expect_error(erin.post(server.api("/me/notifications/read"),
                           json={"nope": 1}), 400, "invalid_request")
    # Anonymous callers get nothing.
    anon = server.new_session()
    assert anon.get(server.api("/me/notifications")).status_code == 401


def test_bad_smtp_from_refuses_to_start(server_factory):
    srv = server_factory(start=False)
    r = srv.cli("serve", "--listen", f"127.0.0.1:{free_port()}",
                env={"GATEHOUSE_SMTP_HOST": "127.0.0.1",
                     "GATEHOUSE_SMTP_FROM": "not an address"},
                check=False)
    assert r.returncode != 0
    assert "smtp_from" in (r.stdout + r.stderr)
