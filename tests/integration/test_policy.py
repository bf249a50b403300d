"""Security policies against the real binary (docs/api.md, Security
policies): CRUD and audit, priorities, the effective policy and where each
field comes from, IP allow-lists over IPv4 (127.0.0.1) and IPv6 (a server
listening on [::1]), the country rule through a geoip_file CSV, refusals in
the sign-in log, session limits, MFA from a policy, and the self-lockout
protection."""

import json
import re
import subprocess
import time

import pytest

from conftest import USER_PASSWORD, expect_error

DEFAULT_ID = "0" * 31 + "1"


def totp(secret, steps=0):
    t = int(time.time()) + 30 * steps
    out = subprocess.run(["oathtool", "--totp", "-b", "-N", f"@{t}", secret],
                         check=True, capture_output=True, text=True)
    code = out.stdout.strip()
    assert re.fullmatch(r"\d{6}", code), code
    return code


def mk_policy(server, admin, name, priority, settings=None, expect=201,
              **extra):
    body = {"name": name, "priority": priority, **extra}
    if settings is not None:
        body["settings"] = settings
    r = admin.post(server.api("/security-policies"), json=body)
    assert r.status_code == expect, r.text
    return r.json()


def mk_group(server, admin, name, **fields):
    r = admin.post(server.api("/groups"), json={"name": name, **fields})
    assert r.status_code == 201, r.text
    return r.json()


def add_member(server, admin, gid, uid):
    r = admin.put(server.api(f"/groups/{gid}/members/{uid}"))
    assert r.status_code == 201, r.text


def attach(server, admin, pid, gid, expect=201, confirm=False):
    q = "?confirm=true" if confirm else ""
    r = admin.put(server.api(f"/security-policies/{pid}/groups/{gid}{q}"))
    assert r.status_code == expect, r.text
    return r


def signins(server, user_id):
    return server.query("SELECT result, reason, source_ip FROM signin_events "
                        "WHERE user_id = ? ORDER BY seq", (user_id,))


def live_sessions(server, user_id):
    return server.query("SELECT id FROM sessions WHERE user_id = ? AND "
                        "revoked_at IS NULL", (user_id,))


def audit(server, pid):
    return server.query("SELECT action, changes FROM audit_events WHERE "
                        "target_id = ? ORDER BY seq", (pid,))


def user_in_group(server, admin, username, group):
    uid = server.create_user(admin, username, password=USER_PASSWORD)["id"]
    g = mk_group(server, admin, group)
    add_member(server, admin, g["id"], uid)
    return uid, g["id"]


def test_policy_crud_priorities_default_and_audit(server, admin):
    r = admin.get(server.api("/security-policies"))
    assert r.status_code == 200, r.text
    pols = r.json()["policies"]
    assert [p["id"] for p in pols] == [DEFAULT_ID]
    assert pols[0]["is_default"] is True and pols[0]["settings"] == {}

    p = mk_policy(server, admin, "Contractors", 10, {
        "network": {"allowed_cidrs": ["127.0.0.5/8", "::1"],
                    "allowed_countries": ["fr"]},
        "session": {"max_concurrent": 2}})
    assert p["settings"]["network"] == {
        "allowed_cidrs": ["127.0.0.0/8", "::1/128"],
        "allowed_countries": ["FR"]}
    expect_error(admin.post(server.api("/security-policies"),
                            json={"name": "Other", "priority": 10}),
                 409, "priority_taken")
    expect_error(admin.post(server.api("/security-policies"),
                            json={"name": "contractors", "priority": 11}),
                 409, "policy_exists")
    expect_error(admin.post(server.api("/security-policies"),
                            json={"name": "X", "priority": -1}),
                 400, "invalid_request")
    expect_error(admin.post(server.api("/security-policies"),
                            json={"name": "X"}), 400, "invalid_request")
    expect_error(admin.post(server.api("/security-policies"),
                            json={"name": "X", "priority": 3,
                                  "settings": {"mfa": {"methods": ["sms"]}}}),
                 400, "invalid_request")
    expect_error(admin.post(server.api("/security-policies"),
                            json={"name": "X", "priority": 3,
                                  "settings": {"network": {"colour": 1}}}),
                 400, "invalid_request")

    r = admin.get(server.api(f"/security-policies/{p['id']}"))
    assert r.status_code == 200 and r.json()["groups"] == []
    expect_error(admin.get(server.api("/security-policies/" + "f" * 32)),
                 404, "policy_not_found")

    # PATCH merges settings: null removes a field, others stay.
    r = admin.patch(server.api(f"/security-policies/{p['id']}"), json={
        "priority": 5, "settings": {"session": {"max_concurrent": None,
                                                "lifetime_s": 3600}}})
    assert r.status_code == 200, r.text
    assert r.json()["priority"] == 5
    assert r.json()["settings"]["session"] == {"lifetime_s": 3600}
    assert r.json()["settings"]["network"]["allowed_countries"] == ["FR"]

    # The default: last, undeletable, never attached to a group.
    expect_error(admin.patch(server.api(f"/security-policies/{DEFAULT_ID}"),
                             json={"priority": 1}), 400, "default_policy")
    expect_error(admin.delete(server.api(f"/security-policies/{DEFAULT_ID}")),
                 409, "default_policy")
    g = mk_group(server, admin, "Staff")
    expect_error(admin.put(server.api(
        f"/security-policies/{DEFAULT_ID}/groups/{g['id']}")), 400,
        "default_policy")
    expect_error(admin.put(server.api(
        f"/security-policies/{p['id']}/groups/{'a' * 32}")), 404,
        "group_not_found")

    attach(server, admin, p["id"], g["id"])
    attach(server, admin, p["id"], g["id"], expect=200)
    r = admin.get(server.api(f"/security-policies/{p['id']}"))
    assert r.json()["groups"] == [g["id"]]
    r = admin.delete(server.api(f"/security-policies/{p['id']}/groups/{g['id']}"))
    assert r.status_code == 204, r.text
    expect_error(admin.delete(server.api(
        f"/security-policies/{p['id']}/groups/{g['id']}")), 404, "not_attached")
    r = admin.delete(server.api(f"/security-policies/{p['id']}"))
    assert r.status_code == 204, r.text
    expect_error(admin.get(server.api(f"/security-policies/{p['id']}")),
                 404, "policy_not_found")
    assert [e["action"] for e in audit(server, p["id"])] == [
        "policy.create", "policy.update", "policy.group.attach",
        "policy.group.detach", "policy.delete"]
    upd = json.loads(audit(server, p["id"])[1]["changes"])
    assert upd["priority"] == {"from": 10, "to": 5}

    # Members may not read or change policies.
    server.create_user(admin, "mallory", password=USER_PASSWORD)
    m = server.login("mallory", USER_PASSWORD)
    assert m.get(server.api("/security-policies")).status_code == 403
    assert m.post(server.api("/security-policies"),
                  json={"name": "Y", "priority": 1}).status_code == 403


def test_invalid_cidr_is_refused_naming_the_entry(server, admin):
    for bad in ("10.0.0.0/33", "10.0.0", "2001:db8::/129", "banana", "::1/08"):
        r = admin.post(server.api("/security-policies"), json={
            "name": "Bad", "priority": 1,
            "settings": {"network": {"allowed_cidrs": ["10.0.0.0/8", bad]}}})
        expect_error(r, 400, "invalid_cidr")
        msg = r.json()["message"]
        assert "allowed_cidrs[1]" in msg and bad in msg, msg
    expect_error(admin.patch(server.api(f"/security-policies/{DEFAULT_ID}"),
                             json={"settings": {"network": {
                                 "allowed_cidrs": [7]}}}),
                 400, "invalid_cidr")
    r = admin.post(server.api("/security-policies"), json={
        "name": "Bad", "priority": 1,
        "settings": {"network": {"allowed_countries": ["France"]}}})
    expect_error(r, 400, "invalid_request")


def test_effective_policy_by_priority_with_sources(server, admin):
    uid = server.create_user(admin, "erin", password=USER_PASSWORD)["id"]
    ga = mk_group(server, admin, "Finance")
    gb = mk_group(server, admin, "Remote")
    child = mk_group(server, admin, "Payroll", parent_id=ga["id"])
    add_member(server, admin, child["id"], uid)   # Finance through Payroll
    add_member(server, admin, gb["id"], uid)
    strict = mk_policy(server, admin, "Strict", 10, {
        "session": {"idle_timeout_s": 600},
        "password": {"min_length": 16}})
    loose = mk_policy(server, admin, "Loose", 20, {
        "session": {"idle_timeout_s": 3600, "lifetime_s": 7200},
        "mfa": {"methods": ["totp", "webauthn"]}})
    attach(server, admin, strict["id"], ga["id"])
    attach(server, admin, loose["id"], gb["id"])
    r = admin.patch(server.api(f"/security-policies/{DEFAULT_ID}"),
                    json={"settings": {"session": {"max_concurrent": 10,
                                                   "lifetime_s": 99999}}})
    assert r.status_code == 200, r.text

    r = admin.get(server.api(f"/users/{uid}/effective-policy"))
    assert r.status_code == 200, r.text
    eff = r.json()
    assert [p["name"] for p in eff["policies"]] == ["Strict", "Loose",
                                                     "Default"]
    s, src = eff["settings"], eff["sources"]
    assert s["session"] == {"idle_timeout_s": 600, "lifetime_s": 7200,
                            "max_concurrent": 10}
    assert src["session.idle_timeout_s"] == {"kind": "policy",
                                             "id": strict["id"],
                                             "name": "Strict"}
    assert src["session.lifetime_s"]["name"] == "Loose"
    assert src["session.max_concurrent"]["name"] == "Default"
    assert s["password"]["min_length"] == 16
    assert src["password.min_length"]["name"] == "Strict"
    # Fields no policy sets come from the org settings.
    assert src["password.min_classes"] == {"kind": "org"}
    assert src["mfa.required"] == {"kind": "org"}
    assert s["mfa"]["methods"] == ["totp", "webauthn"]
    assert src["mfa.methods"]["name"] == "Loose"

    # Swapping the priorities swaps the winner.
    r = admin.patch(server.api(f"/security-policies/{strict['id']}"),
                    json={"priority": 30})
    assert r.status_code == 200, r.text
    eff = admin.get(server.api(f"/users/{uid}/effective-policy")).json()
    assert eff["settings"]["session"]["idle_timeout_s"] == 3600
    assert eff["sources"]["session.idle_timeout_s"]["name"] == "Loose"

    # Another user in no group sees the default and the org values only.
    other = server.create_user(admin, "frank", password=USER_PASSWORD)["id"]
    eff = admin.get(server.api(f"/users/{other}/effective-policy")).json()
    assert [p["name"] for p in eff["policies"]] == ["Default"]
    assert "idle_timeout_s" not in eff["settings"]["session"]
    expect_error(admin.get(server.api(f"/users/{'e' * 32}/effective-policy")),
                 404, "user_not_found")


def test_ipv4_allow_list_refuses_then_admits_and_is_logged(server, admin):
    uid, gid = user_in_group(server, admin, "gina", "Office")
    p = mk_policy(server, admin, "Office only", 10,
                  {"network": {"allowed_cidrs": ["10.0.0.0/8",
                                                 "2001:db8::/32"]}})
    attach(server, admin, p["id"], gid)
    r = server.signin("gina", USER_PASSWORD)
    expect_error(r, 403, "ip_not_allowed")
    assert "gh_session" not in r.cookies
    assert live_sessions(server, uid) == []
    rows = signins(server, uid)
    assert rows[-1]["result"] == "failure"
    assert rows[-1]["reason"] == "ip_not_allowed"
    assert rows[-1]["source_ip"] == "127.0.0.1"
    # The wrong password is still just a wrong password.
    expect_error(server.signin("gina", "nope-nope-nope"), 401,
                 "invalid_credentials")

    # The HTML form refuses it too, without a session.
    s = server.new_session()
    page = s.get(server.url(f"/o/{server.org}/login"))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                     page.text).group(1)
    r = s.post(server.url(f"/o/{server.org}/login"), data={
        "username": "gina", "password": USER_PASSWORD, "csrf_token": csrf},
        allow_redirects=False)
    assert r.status_code == 403, r.text[:300]
    assert "network" in r.text
    assert live_sessions(server, uid) == []

    r = admin.patch(server.api(f"/security-policies/{p['id']}"), json={
        "settings": {"network": {"allowed_cidrs": ["127.0.0.0/8"]}}})
    assert r.status_code == 200, r.text
    assert server.signin("gina", USER_PASSWORD).status_code == 200
    assert signins(server, uid)[-1]["reason"] == "ok"
    # The admin, in no group, was never affected.
    assert server.signin(server.admin, server.admin_password).status_code == 200


def test_sign_in_log_lists_the_refusal(server, admin):
    uid, gid = user_in_group(server, admin, "hank", "Blocked")
    p = mk_policy(server, admin, "Nowhere", 10,
                  {"network": {"allowed_cidrs": ["192.0.2.0/24"]}})
    attach(server, admin, p["id"], gid)
    expect_error(server.signin("hank", USER_PASSWORD), 403, "ip_not_allowed")
    r = admin.get(server.api(f"/signins?user_id={uid}"))
    assert r.status_code == 200, r.text
    ev = r.json()["signins"][0]
    assert ev["reason"] == "ip_not_allowed", ev


def free_port6():
    import socket
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def test_ipv6_allow_list_over_an_ipv6_socket(server_factory):
    import socket
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    srv = server_factory(start=False)
    port = free_port6()

    class V6(type(srv)):
        @property
        def base(self):
            return f"http://[::1]:{port}"

    srv.__class__ = V6
    srv.start(listen=False, port=port, extra_args=["--listen",
                                                   f"[::1]:{port}"])
    admin = srv.login()
    uid, gid = user_in_group(srv, admin, "ivy", "V6")
    p = mk_policy(srv, admin, "Documentation net", 10,
                  {"network": {"allowed_cidrs": ["2001:db8::/32",
                                                 "127.0.0.0/8"]}})
    attach(srv, admin, p["id"], gid)
    expect_error(srv.signin("ivy", USER_PASSWORD), 403, "ip_not_allowed")
    assert signins(srv, uid)[-1]["source_ip"] == "::1"
    assert signins(srv, uid)[-1]["reason"] == "ip_not_allowed"
    r = admin.patch(srv.api(f"/security-policies/{p['id']}"), json={
        "settings": {"network": {"allowed_cidrs": ["::/127"]}}})
    assert r.status_code == 200, r.text
    assert srv.signin("ivy", USER_PASSWORD).status_code == 200
    assert live_sessions(srv, uid) != []


def write_geo(tmp_path, cc4, cc6="ZZ"):
    path = tmp_path / "geo.csv"
    path.write_text(f"# test map\n127.0.0.0/8,{cc4}\n::1/128,{cc6}\n")
    return path


def test_country_rule_through_the_geoip_file(server_factory, tmp_path):
    geo = write_geo(tmp_path, "FR")
    srv = server_factory(serve_env={"GATEHOUSE_GEOIP_FILE": str(geo)})
    admin = srv.login()
    uid, gid = user_in_group(srv, admin, "jack", "Abroad")
    p = mk_policy(srv, admin, "Germany only", 10,
                  {"network": {"allowed_countries": ["DE"]}})
    attach(srv, admin, p["id"], gid)
    expect_error(srv.signin("jack", USER_PASSWORD), 403,
                 "country_not_allowed")
    assert signins(srv, uid)[-1]["reason"] == "country_not_allowed"
    assert live_sessions(srv, uid) == []
    r = admin.patch(srv.api(f"/security-policies/{p['id']}"), json={
        "settings": {"network": {"allowed_countries": ["de", "fr"]}}})
    assert r.status_code == 200, r.text
    assert srv.signin("jack", USER_PASSWORD).status_code == 200


def test_unknown_country_fails_closed_without_a_geoip_file(server, admin):
    uid, gid = user_in_group(server, admin, "kate", "Travel")
    p = mk_policy(server, admin, "France only", 10,
                  {"network": {"allowed_countries": ["FR"]}})
    attach(server, admin, p["id"], gid)
    expect_error(server.signin("kate", USER_PASSWORD), 403,
                 "country_not_allowed")


def test_bad_geoip_file_stops_start_up(server_factory, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("127.0.0.0/8,FR\nnot a line\n")
    srv = server_factory(start=False)
    with pytest.raises(Exception) as e:
        srv.start(env={"GATEHOUSE_GEOIP_FILE": str(bad)})
    assert "line 2" in str(e.value)
    srv.proc = None
    srv.problems.clear()


def test_session_lifetime_idle_and_max_concurrent(server, admin):
    uid, gid = user_in_group(server, admin, "liam", "Kiosk")
    p = mk_policy(server, admin, "Kiosk", 10, {"session": {
        "lifetime_s": 120, "idle_timeout_s": 60, "max_concurrent": 1}})
    attach(server, admin, p["id"], gid)
    first = server.login("liam", USER_PASSWORD)
    sess = first.signin_body["session"]
    row = server.query("SELECT created_at, expires_at, idle_ms FROM sessions "
                       "WHERE id = ?", (sess["id"],))[0]
    assert row["expires_at"] - row["created_at"] == 120000
    assert row["idle_ms"] == 60000
    assert first.get(server.api("/me")).status_code == 200
    second = server.login("liam", USER_PASSWORD)
    # The oldest session went: only the newest is live.
    assert [r["id"] for r in live_sessions(server, uid)] == \
        [second.signin_body["session"]["id"]]
    assert first.get(server.api("/me")).status_code == 401
    assert second.get(server.api("/me")).status_code == 200
    ev = server.query("SELECT changes FROM audit_events WHERE action = "
                      "'session.revoke' AND target_id = ?", (sess["id"],))
    assert "policy_max_concurrent" in ev[0]["changes"]


def test_policy_mfa_required_and_methods(server, admin):
    uid, gid = user_in_group(server, admin, "mia", "Secure")
    p = mk_policy(server, admin, "MFA", 10, {"mfa": {"required": True}})
    attach(server, admin, p["id"], gid)
    r = server.signin("mia", USER_PASSWORD)
    assert r.status_code == 200, r.text
    # Required by the policy at once: enrol before any session.
    assert r.json().get("mfa_required") is True
    assert r.json().get("mfa_enrolment_required") is True
    assert "gh_session" not in r.cookies
    # Without the policy, the org's (not required) applies again.
    r = admin.delete(server.api(f"/security-policies/{p['id']}/groups/{gid}"))
    assert r.status_code == 204
    assert "csrf_token" in server.signin("mia", USER_PASSWORD).json()

    # methods: TOTP enrolled, the policy allows only webauthn.
    s = server.login("mia", USER_PASSWORD)
    r = s.post(server.api("/me/mfa/totp"))
    secret = r.json()["secret"]
    r = s.post(server.api("/me/mfa/totp/confirm"), json={"code": totp(secret)})
    assert r.status_code == 200, r.text
    q = mk_policy(server, admin, "Keys only", 11, {"mfa": {
        "methods": ["webauthn"]}})
    attach(server, admin, q["id"], gid)
    ps = server.new_session()
    r = server.signin("mia", USER_PASSWORD, session=ps)
    assert r.json()["mfa_required"] is True
    assert "totp" not in r.json()["methods"]
    r = ps.post(server.api("/session/mfa"), json={"method": "totp",
                                                  "code": totp(secret)})
    expect_error(r, 403, "mfa_method_not_allowed")


def test_mfa_second_step_from_a_blocked_address_is_refused(server, admin):
    uid, gid = user_in_group(server, admin, "noah", "Ops")
    s = server.login("noah", USER_PASSWORD)
    r = s.post(server.api("/me/mfa/totp"))
    secret = r.json()["secret"]
    r = s.post(server.api("/me/mfa/totp/confirm"), json={"code": totp(secret)})
    assert r.status_code == 200, r.text
    ps = server.new_session()
    r = server.signin("noah", USER_PASSWORD, session=ps)
    assert r.json()["mfa_required"] is True
    before = len(live_sessions(server, uid))
    # Between the two steps the user's policy starts refusing 127.0.0.1.
    p = mk_policy(server, admin, "Elsewhere", 10,
                  {"network": {"allowed_cidrs": ["198.51.100.0/24"]}})
    attach(server, admin, p["id"], gid)
    r = ps.post(server.api("/session/mfa"), json={"method": "totp",
                                                  "code": totp(secret)})
    expect_error(r, 403, "ip_not_allowed")
    assert len(live_sessions(server, uid)) == before
    assert signins(server, uid)[-1]["reason"] == "ip_not_allowed"


def test_self_lockout_needs_confirmation(server, admin):
    me = admin.user["id"]
    g = mk_group(server, admin, "Admins")
    add_member(server, admin, g["id"], me)
    other_owner = server.create_user(admin, "olga", password=USER_PASSWORD,
                                     role="owner")["id"]
    p = mk_policy(server, admin, "VPN only", 10,
                  {"network": {"allowed_cidrs": ["10.8.0.0/16"]}})
    # Attaching it would block the caller's own address.
    r = admin.put(server.api(f"/security-policies/{p['id']}/groups/{g['id']}"))
    expect_error(r, 409, "would_lock_out_caller")
    assert server.query("SELECT * FROM policy_groups") == []
    # So would making the default refuse it (the admin falls through to
    # the default for network rules).
    r = admin.patch(server.api(f"/security-policies/{DEFAULT_ID}"), json={
        "settings": {"network": {"allowed_cidrs": ["10.0.0.0/8"]}}})
    expect_error(r, 409, "would_lock_out_caller")
    # A create that blocks the caller through a country rule too.
    r = admin.patch(server.api(f"/security-policies/{DEFAULT_ID}"), json={
        "settings": {"network": {"allowed_countries": ["FR"]}}})
    expect_error(r, 409, "would_lock_out_caller")

    # With confirm it goes through, and the audit says so.
    attach(server, admin, p["id"], g["id"], confirm=True)
    ev = [e for e in audit(server, p["id"])
          if e["action"] == "policy.group.attach"]
    assert json.loads(ev[0]["changes"])["lockout_confirmed"] is True
    expect_error(server.signin(server.admin, server.admin_password), 403,
                 "ip_not_allowed")
    # The session made before still works: the caller can undo it.
    r = admin.delete(server.api(f"/security-policies/{p['id']}/groups/{g['id']}"))
    assert r.status_code == 204, r.text
    assert server.signin(server.admin, server.admin_password).status_code == 200

    # An empty allow-list in the default would leave no owner anywhere:
    # refused even with confirm.
    r = admin.patch(server.api(f"/security-policies/{DEFAULT_ID}"), json={
        "settings": {"network": {"allowed_cidrs": []}}, "confirm": True})
    expect_error(r, 409, "would_lock_out_all_admins")
    # One owner still reachable (olga through an override) is enough.
    og = mk_group(server, admin, "Break glass")
    add_member(server, admin, og["id"], other_owner)
    bg = mk_policy(server, admin, "Break glass", 1,
                   {"network": {"allowed_cidrs": ["0.0.0.0/0", "::/0"]}})
    attach(server, admin, bg["id"], og["id"])
    r = admin.patch(server.api(f"/security-policies/{DEFAULT_ID}"), json={
        "settings": {"network": {"allowed_cidrs": []}}, "confirm": True})
    assert r.status_code == 200, r.text
    assert server.signin("olga", USER_PASSWORD).status_code == 200


def test_policy_password_rules_apply_to_password_changes(server, admin):
    uid, gid = user_in_group(server, admin, "pia", "Vault")
    p = mk_policy(server, admin, "Long passwords", 10,
                  {"password": {"min_length": 40}})
    attach(server, admin, p["id"], gid)
    s = server.login("pia", USER_PASSWORD)
    r = s.post(server.api("/me/password"), json={
        "current_password": USER_PASSWORD,
        "new_password": "Another-Decent-Passphrase-7731"})
    body = expect_error(r, 400, "weak_password")
    assert body["reason"] == "too_short", body
    r = admin.patch(server.api(f"/users/{uid}"), json={
        "password": "Another-Decent-Passphrase-7731"})
    expect_error(r, 400, "weak_password")
    # The same password is fine for a user outside the group.
    other = server.create_user(admin, "quinn", password=USER_PASSWORD)["id"]
    r = admin.patch(server.api(f"/users/{other}"), json={
        "password": "Another-Decent-Passphrase-7731"})
    assert r.status_code == 200, r.text
    long_pw = "Correct-Horse-Battery-Staple-Lantern-Orchard-4821"
    r = s.post(server.api("/me/password"), json={
        "current_password": USER_PASSWORD, "new_password": long_pw})
    assert r.status_code == 204, r.text
