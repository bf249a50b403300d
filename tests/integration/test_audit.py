"""Audit events: one per mutation, in the same transaction, with the right
action, actor and target, never a secret; none for reads. Sign-in events
for every attempt. The audit and sign-in APIs: filters, paging, order."""

import json

import requests

from conftest import (ADMIN_PASSWORD, OTHER_PASSWORD, USER_AGENT,
                      USER_PASSWORD, expect_error)


class Audit:
    """Tracks the audit_events table: each check() returns the events added
    since the previous call."""

    def __init__(self, server):
        self.server = server
        self.seq = self._max()

    def _max(self):
        return self.server.query("SELECT coalesce(max(seq), 0) AS m "
                                 "FROM audit_events")[0]["m"]

    def new(self):
        rows = self.server.query("SELECT * FROM audit_events WHERE seq > ? "
                                 "ORDER BY seq", (self.seq,))
        if rows:
            self.seq = rows[-1]["seq"]
        return rows

    def one(self, resp, action, actor_type, actor_id, target_type=None,
            target_id=None):
        rows = self.new()
        assert len(rows) == 1, \
            f"{action}: expected exactly one event, got {json.dumps(rows, indent=1)}"
        ev = rows[0]
        assert ev["action"] == action, ev
        assert ev["actor_type"] == actor_type, ev
        assert ev["actor_id"] == actor_id, ev
        if target_type is not None:
            assert ev["target_type"] == target_type, ev
        if target_id is not None:
            assert ev["target_id"] == target_id, ev
        assert ev["source_ip"] == "127.0.0.1", ev
        assert ev["request_id"] == resp.headers.get("X-Request-Id"), \
            (ev, resp.headers.get("X-Request-Id"))
        json.loads(ev["changes"])  # valid JSON
        return ev

    def none(self, what):
        rows = self.new()
        assert rows == [], f"{what} wrote audit events: {rows}"


def test_every_mutation_writes_exactly_one_event_and_reads_none(server):
    audit = Audit(server)
    secrets = [ADMIN_PASSWORD, USER_PASSWORD, OTHER_PASSWORD]

    r = server.signin("admin", ADMIN_PASSWORD)
    assert r.status_code == 200
    admin = server.new_session()
    admin.cookies.update(r.cookies)
    admin.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    admin_id = r.json()["user"]["id"]
    secrets += [r.cookies["gh_session"], r.json()["csrf_token"]]
    audit.one(r, "session.create", "user", admin_id)

    # Reads write nothing.
    for path in ("/me", "/me/sessions", "/org", "/users", "/password-policy",
                 "/tokens", "/audit", "/signins", f"/users/{admin_id}",
                 f"/users/{admin_id}/sessions"):
        assert admin.get(server.api(path)).status_code == 200, path
    requests.get(server.url("/metrics"), timeout=10)
    requests.get(server.url("/o/acme/login"), timeout=10)
    audit.none("reads")

    r = admin.post(server.api("/users"), json={
        "username": "bob", "email": "bob@example.com", "password": USER_PASSWORD})
    assert r.status_code == 201, r.text
    bob = r.json()["id"]
    ev = audit.one(r, "user.create", "user", admin_id, "user", bob)
    changes = json.loads(ev["changes"])
    if "password" in changes:
        assert changes["password"] in ("set", "changed"), changes

    r = admin.patch(server.api(f"/users/{bob}"), json={"email": "b2@example.com"})
    assert r.status_code == 200
    ev = audit.one(r, "user.update", "user", admin_id, "user", bob)
    assert json.loads(ev["changes"])["email"] == {"from": "bob@example.com",
                                                  "to": "b2@example.com"}, ev

    r = admin.patch(server.api(f"/users/{bob}"), json={"password": OTHER_PASSWORD})
    assert r.status_code == 200
    ev = audit.one(r, "user.update", "user", admin_id, "user", bob)
    assert json.loads(ev["changes"]).get("password") in ("changed", "set"), ev

    r = admin.patch(server.api("/org"), json={"name": "Acme Audited"})
    assert r.status_code == 200
    audit.one(r, "org.update", "user", admin_id)

    r = admin.patch(server.api("/password-policy"), json={"min_length": 12})
    assert r.status_code == 200
    audit.one(r, "password_policy.update", "user", admin_id)

    r = admin.post(server.api("/tokens"), json={"name": "audit", "expires_in_days": 1})
    assert r.status_code == 201
    tok = r.json()
    secrets.append(tok["token"])
    audit.one(r, "api_token.create", "user", admin_id, "api_token", tok["id"])

    b = server.bearer(tok["token"])
    assert b.get(server.api("/users")).status_code == 200
    audit.none("a read through a token")
    r = b.post(server.api("/users"), json={"username": "carol"})
    assert r.status_code == 201
    carol = r.json()["id"]
    audit.one(r, "user.create", "api_token", tok["id"], "user", carol)

    r = admin.delete(server.api(f"/tokens/{tok['id']}"))
    assert r.status_code == 204
    audit.one(r, "api_token.revoke", "user", admin_id, "api_token", tok["id"])

    r = admin.delete(server.api(f"/users/{carol}"))
    assert r.status_code == 204
    audit.one(r, "user.delete", "user", admin_id, "user", carol)

    r = server.signin("bob", OTHER_PASSWORD)
    assert r.status_code == 200
    secrets += [r.cookies["gh_session"], r.json()["csrf_token"]]
    audit.one(r, "session.create", "user", bob)

    r = admin.post(server.api(f"/users/{bob}/disable"))
    assert r.status_code == 200
    audit.one(r, "user.disable", "user", admin_id, "user", bob)

    # Failed mutations write nothing.
    bad = [
        admin.post(server.api("/users"), json={"username": "BOB"}),
        admin.post(server.api("/users"), json={"username": "weak", "password": "123456"}),
        admin.post(server.api("/users"), data="{", headers={"Content-Type": "application/json"}),
        admin.patch(server.api("/users/" + "0" * 32), json={"email": "x@example.com"}),
        admin.delete(server.api(f"/users/{admin_id}")),
        server.signin("admin", "Wrong-Password-1234!"),
        server.signin("ghost", "Wrong-Password-1234!"),
    ]
    assert all(400 <= x.status_code < 500 for x in bad), [x.status_code for x in bad]
    audit.none("failed requests")

    r = admin.delete(server.api("/session"))
    assert r.status_code == 204
    audit.one(r, "session.revoke", "user", admin_id)

    dump = json.dumps(server.query("SELECT * FROM audit_events"))
    dump += json.dumps(server.query("SELECT * FROM signin_events"))
    for s in secrets:
        assert s not in dump, f"secret {s[:6]}… found in the audit tables"
    log = server.log()
    for s in secrets:
        assert s not in log, f"secret {s[:6]}… found in the server log"


def test_audit_api_filters_paging_and_order(server, admin):
    ids = [server.create_user(admin, f"aud{i}")["id"] for i in range(5)]
    r = admin.patch(server.api(f"/users/{ids[0]}"), json={"display_name": "Zero"})
    assert r.status_code == 200

    r = admin.get(server.api("/audit?action=user.create"))
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    mine = [e for e in events if e["actor"] == {"type": "user", "id": admin.user["id"]}]
    assert [e["target"]["id"] for e in mine] == list(reversed(ids)), events
    for e in events:
        assert e["action"] == "user.create"
        assert {"id", "at", "actor", "action", "target", "changes",
                "source_ip", "request_id"} <= set(e), e
        assert e["target"]["type"] == "user"

    r = admin.get(server.api(f"/audit?target_type=user&target_id={ids[0]}"))
    assert [e["action"] for e in r.json()["events"]] == ["user.update", "user.create"]
    upd = r.json()["events"][0]
    assert upd["changes"]["display_name"]["to"] == "Zero", upd

    r = admin.get(server.api(f"/audit?actor_id={admin.user['id']}"))
    assert all(e["actor"]["id"] == admin.user["id"] for e in r.json()["events"])

    # Paging, newest first, no gaps or repeats.
    everything = admin.get(server.api("/audit?limit=200")).json()["events"]
    ats = [e["at"] for e in everything]
    assert ats == sorted(ats, reverse=True), ats
    seen, cursor = [], None
    while True:
        url = server.api("/audit?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        body = admin.get(url).json()
        seen += [e["id"] for e in body["events"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
        assert len(seen) < 500
    assert seen == [e["id"] for e in everything]

    # since/until.
    first_at = everything[-1]["at"]
    last_at = everything[0]["at"]
    r = admin.get(server.api(f"/audit?since={last_at}&limit=200"))
    assert r.status_code == 200
    assert all(e["at"] >= last_at for e in r.json()["events"])
    r = admin.get(server.api(f"/audit?until={first_at}&limit=200"))
    assert all(e["at"] <= first_at for e in r.json()["events"])
    for bad in ("since=yesterday", "limit=0", "limit=201", "cursor=zzz"):
        expect_error(admin.get(server.api(f"/audit?{bad}")), 400, "invalid_request")


def test_signin_events_are_recorded_with_ip_and_user_agent(server):
    assert server.signin("admin", "Wrong-Password-1234!").status_code == 401
    assert server.signin("ghost", "Wrong-Password-1234!").status_code == 401
    admin = server.login()
    rows = server.query("SELECT * FROM signin_events ORDER BY seq")
    assert [r["result"] for r in rows] == ["failure", "failure", "success"], rows
    assert [r["reason"] for r in rows] == ["bad_credentials", "bad_credentials", "ok"]
    assert rows[0]["user_id"] == admin.user["id"]
    assert rows[1]["user_id"] is None and rows[1]["username"] == "ghost"
    assert rows[2]["user_id"] == admin.user["id"]
    for r in rows:
        assert r["source_ip"] == "127.0.0.1" and r["user_agent"] == USER_AGENT, r
    dump = json.dumps(rows)
    assert "Wrong-Password-1234!" not in dump and ADMIN_PASSWORD not in dump

    r = admin.get(server.api("/signins?result=failure"))
    assert r.status_code == 200, r.text
    fails = r.json()["signins"]
    assert len(fails) == 2, fails
    assert all(f["result"] == "failure" for f in fails)
    r = admin.get(server.api(f"/signins?user_id={admin.user['id']}"))
    got = r.json()["signins"]
    assert [s["result"] for s in got] == ["success", "failure"], got  # newest first
    r = admin.get(server.api("/signins?limit=1"))
    assert len(r.json()["signins"]) == 1 and r.json()["next_cursor"]
    expect_error(admin.get(server.api("/signins?result=maybe")), 400,
                 "invalid_request")


def test_a_malformed_signin_is_recorded_as_invalid_request(server):
    s = server.new_session()
    r = s.post(server.api("/session"), json={"username": "admin"})
    assert r.status_code == 400
    rows = server.query("SELECT * FROM signin_events")
    # docs/api.md lists invalid_request as a recorded reason.
    assert [(x["result"], x["reason"]) for x in rows] == [("failure", "invalid_request")], rows


def test_cli_changes_are_audited_as_operator(server):
    # init created the owner: that is a create in the org's database too.
    rows = server.query("SELECT * FROM audit_events WHERE action = 'user.create'")
    assert len(rows) == 1 and rows[0]["actor_type"] == "operator", rows
    audit = Audit(server)
    server.cli("user", "add", "--org", "acme", "opuser",
               env={"GATEHOUSE_USER_PASSWORD": USER_PASSWORD})
    rows = audit.new()
    assert len(rows) == 1 and rows[0]["action"] == "user.create", rows
    assert rows[0]["actor_type"] == "operator"
    server.cli("user", "disable", "--org", "acme", "opuser")
    rows = audit.new()
    assert len(rows) == 1 and rows[0]["action"] == "user.disable", rows
    server.cli("user", "list", "--org", "acme")
    server.cli("user", "show", "--org", "acme", "opuser")
    audit.none("CLI reads")

    before = server.query("SELECT count(*) AS n FROM operator_audit",
                          db=server.directory_db())[0]["n"]
    server.cli("org", "create", "gamma")
    server.cli("org", "list")
    rows = server.query("SELECT * FROM operator_audit ORDER BY seq",
                        db=server.directory_db())
    assert len(rows) == before + 1, rows
    assert "create" in rows[-1]["action"], rows[-1]
