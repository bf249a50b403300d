"""Groups against the real binary (docs/api.md, Groups): CRUD, the
one-level nesting rules, membership (direct and effective), audit events,
permissions, and MFA required for chosen groups through the org MFA
policy's required_groups."""

import subprocess
import time
import re

from conftest import USER_PASSWORD, expect_error


def totp(secret, steps=0):
    t = int(time.time()) + 30 * steps
    out = subprocess.run(["oathtool", "--totp", "-b", "-N", f"@{t}", secret],
                         check=True, capture_output=True, text=True)
    code = out.stdout.strip()
    assert re.fullmatch(r"\d{6}", code), code
    return code


def mk_group(server, admin, name, expect=201, **fields):
    r = admin.post(server.api("/groups"), json={"name": name, **fields})
    assert r.status_code == expect, r.text
    return r.json()


def add_member(server, admin, gid, uid, expect=201):
    r = admin.put(server.api(f"/groups/{gid}/members/{uid}"))
    assert r.status_code == expect, r.text
    return r.json()


def audit(server, gid):
    return [r["action"] for r in server.query(
        "SELECT action FROM audit_events WHERE target_id = ? ORDER BY seq",
        (gid,))]


def test_group_crud_and_audit(server, admin):
    g = mk_group(server, admin, "Engineering", description="builders")
    assert g["name"] == "Engineering" and g["parent_id"] is None
    assert g["description"] == "builders" and g["created_at"]
    expect_error(admin.post(server.api("/groups"), json={"name": "ENGINEERING"}),
                 409, "group_exists")
    expect_error(admin.post(server.api("/groups"), json={}), 400,
                 "invalid_request")
    expect_error(admin.post(server.api("/groups"), json={"name": "a" * 65}),
                 400, "invalid_request")
    expect_error(admin.post(server.api("/groups"), json={"name": "x/y"}),
                 400, "invalid_request")
    expect_error(admin.post(server.api("/groups"),
                            json={"name": "ok", "colour": "red"}),
                 400, "invalid_request")

    r = admin.get(server.api(f"/groups/{g['id']}"))
    assert r.status_code == 200 and r.json()["name"] == "Engineering"
    expect_error(admin.get(server.api("/groups/" + "0" * 32)), 404,
                 "group_not_found")
    expect_error(admin.get(server.api("/groups/nope")), 404,
                 "group_not_found")

    r = admin.patch(server.api(f"/groups/{g['id']}"),
                    json={"name": "Eng", "description": ""})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Eng" and r.json()["description"] == ""
    mk_group(server, admin, "Other")
    expect_error(admin.patch(server.api(f"/groups/{g['id']}"),
                             json={"name": "other"}), 409, "group_exists")

    # Paging with a cursor covers every group once.
    for i in range(5):
        mk_group(server, admin, f"g{i}")
    seen, cursor = [], None
    while True:
        q = "/groups?limit=3" + (f"&cursor={cursor}" if cursor else "")
        r = admin.get(server.api(q))
        assert r.status_code == 200, r.text
        seen += [x["name"] for x in r.json()["groups"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(["Eng", "Other"] +
                                  [f"g{i}" for i in range(5)])
    expect_error(admin.get(server.api("/groups?cursor=bad")), 400,
                 "invalid_request")
    expect_error(admin.get(server.api("/groups?limit=0")), 400,
                 "invalid_request")
    r = admin.get(server.api("/groups?q=ENG"))
    assert [x["name"] for x in r.json()["groups"]] == ["Eng"]

    r = admin.delete(server.api(f"/groups/{g['id']}"))
    assert r.status_code == 204, r.text
    expect_error(admin.get(server.api(f"/groups/{g['id']}")), 404,
                 "group_not_found")
    assert audit(server, g["id"]) == ["group.create", "group.update",
                                      "group.delete"]
    ev = server.query("SELECT changes FROM audit_events WHERE action = "
                      "'group.update' AND target_id = ?", (g["id"],))
    assert "Engineering" in ev[0]["changes"] and "Eng" in ev[0]["changes"]


def test_nesting_is_one_level(server, admin):
    parent = mk_group(server, admin, "parent")
    child = mk_group(server, admin, "child", parent_id=parent["id"])
    other = mk_group(server, admin, "other")
    assert child["parent_id"] == parent["id"]
    expect_error(admin.post(server.api("/groups"),
                            json={"name": "grandchild",
                                  "parent_id": child["id"]}),
                 400, "nesting_too_deep")
    expect_error(admin.post(server.api("/groups"),
                            json={"name": "orphan", "parent_id": "0" * 32}),
                 400, "parent_not_found")
    expect_error(admin.patch(server.api(f"/groups/{other['id']}"),
                             json={"parent_id": other["id"]}),
                 400, "group_cycle")
    expect_error(admin.patch(server.api(f"/groups/{parent['id']}"),
                             json={"parent_id": child["id"]}),
                 400, "group_cycle")
    expect_error(admin.patch(server.api(f"/groups/{parent['id']}"),
                             json={"parent_id": other["id"]}),
                 400, "group_has_children")
    expect_error(admin.patch(server.api(f"/groups/{parent['id']}"),
                             json={"parent_id": 5}),
                 400, "invalid_request")
    r = admin.get(server.api(f"/groups?parent_id={parent['id']}"))
    assert [x["id"] for x in r.json()["groups"]] == [child["id"]]
    # A parent is not deleted while it has children (409).
    expect_error(admin.delete(server.api(f"/groups/{parent['id']}")), 409,
                 "group_has_children")
    # Detaching the child makes it top-level, then the parent can go.
    r = admin.patch(server.api(f"/groups/{child['id']}"),
                    json={"parent_id": None})
    assert r.status_code == 200 and r.json()["parent_id"] is None
    assert admin.delete(server.api(f"/groups/{parent['id']}")).status_code \
        == 204


def test_membership_direct_and_effective(server, admin):
    uid = server.create_user(admin, "maria", password=USER_PASSWORD)["id"]
    parent = mk_group(server, admin, "staff")
    child = mk_group(server, admin, "nurses", parent_id=parent["id"])
    assert add_member(server, admin, child["id"], uid)["added"] is True
    assert add_member(server, admin, child["id"], uid, expect=200)["added"] \
        is False
    expect_error(admin.put(server.api(f"/groups/{child['id']}/members/"
                                      + "0" * 32)), 404, "user_not_found")
    expect_error(admin.put(server.api("/groups/" + "0" * 32 + f"/members/{uid}")),
                 404, "group_not_found")

    r = admin.get(server.api(f"/groups/{child['id']}/members"))
    assert r.status_code == 200, r.text
    m = r.json()["members"]
    assert [x["username"] for x in m] == ["maria"] and m[0]["added_at"]
    assert "password_hash" not in m[0]

    r = admin.get(server.api(f"/users/{uid}/groups"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [g["name"] for g in body["direct"]] == ["nurses"]
    eff = {g["name"]: g for g in body["effective"]}
    assert set(eff) == {"nurses", "staff"}
    assert eff["nurses"]["direct"] is True
    assert eff["staff"]["direct"] is False
    assert eff["staff"]["via"] == [child["id"]]
    expect_error(admin.get(server.api("/users/" + "0" * 32 + "/groups")),
                 404, "user_not_found")

    r = admin.delete(server.api(f"/groups/{child['id']}/members/{uid}"))
    assert r.status_code == 204, r.text
    expect_error(admin.delete(server.api(
        f"/groups/{child['id']}/members/{uid}")), 404, "not_a_member")
    assert admin.get(server.api(f"/users/{uid}/groups")).json()["effective"] \
        == []
    assert audit(server, child["id"]) == ["group.create", "group.member.add",
                                          "group.member.remove"]
    ev = server.query("SELECT changes FROM audit_events WHERE action = "
                      "'group.member.add'")
    assert uid in ev[0]["changes"]

    # Deleting a user drops their memberships.
    add_member(server, admin, child["id"], uid)
    assert admin.delete(server.api(f"/users/{uid}")).status_code == 204
    r = admin.get(server.api(f"/groups/{child['id']}/members"))
    assert r.json()["members"] == []


def test_members_may_not_manage_groups(server, admin):
    g = mk_group(server, admin, "team")
    uid = server.create_user(admin, "nina", password=USER_PASSWORD)["id"]
    nina = server.login("nina", USER_PASSWORD)
    expect_error(nina.get(server.api("/groups")), 403, "permission_denied")
    expect_error(nina.post(server.api("/groups"), json={"name": "mine"}),
                 403, "permission_denied")
    expect_error(nina.patch(server.api(f"/groups/{g['id']}"),
                            json={"name": "x"}), 403, "permission_denied")
    expect_error(nina.delete(server.api(f"/groups/{g['id']}")), 403,
                 "permission_denied")
    expect_error(nina.put(server.api(f"/groups/{g['id']}/members/{uid}")),
                 403, "permission_denied")
    expect_error(nina.get(server.api(f"/users/{uid}/groups")), 403,
                 "permission_denied")
    anon = server.new_session()
    expect_error(anon.get(server.api("/groups")), 401, "unauthenticated")
    assert admin.get(server.api(f"/groups/{g['id']}/members")).json()[
        "members"] == []


def password_signin(server, username):
    s = server.new_session()
    r = server.signin(username, USER_PASSWORD, session=s)
    assert r.status_code == 200, r.text
    return s, r.json()


def test_mfa_required_for_one_group_and_not_another(server, admin):
    a = mk_group(server, admin, "A")
    b = mk_group(server, admin, "B")
    a_child = mk_group(server, admin, "A-child", parent_id=a["id"])
    users = {}
    for name in ("alma", "bert", "cleo", "dina"):
        users[name] = server.create_user(admin, name,
                                         password=USER_PASSWORD)["id"]
    add_member(server, admin, a["id"], users["alma"])
    add_member(server, admin, b["id"], users["bert"])
    add_member(server, admin, a_child["id"], users["cleo"])
    add_member(server, admin, a["id"], users["dina"])

    # dina enrols TOTP before the rule, so she will have to give a code.
    dina = server.login("dina", USER_PASSWORD)
    r = dina.post(server.api("/me/mfa/totp"))
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = dina.post(server.api("/me/mfa/totp/confirm"),
                  json={"code": totp(secret)})
    assert r.status_code == 200, r.text

    # Validation: unknown and malformed ids are refused.
    expect_error(admin.patch(server.api("/mfa-policy"),
                             json={"required_groups": ["0" * 32]}),
                 400, "unknown_group")
    expect_error(admin.patch(server.api("/mfa-policy"),
                             json={"required_groups": "x"}),
                 400, "invalid_request")
    expect_error(admin.patch(server.api("/mfa-policy"),
                             json={"required_groups": [a["id"], a["id"]]}),
                 400, "invalid_request")

    r = admin.patch(server.api("/mfa-policy"),
                    json={"required_groups": [a["id"]], "grace_days": 0})
    assert r.status_code == 200, r.text
    pol = r.json()
    assert pol["required"] is False and pol["required_groups"] == [a["id"]]
    assert pol["required_groups_since"][a["id"]]
    assert admin.get(server.api("/mfa-policy")).json()["required_groups"] \
        == [a["id"]]

    # In A without a factor: enrolment required, no session.
    s, body = password_signin(server, "alma")
    assert body["mfa_required"] is True and \
        body["mfa_enrolment_required"] is True, body
    assert "session" not in body
    expect_error(s.get(server.api("/me")), 401, "unauthenticated")

    # In B: password alone.
    s, body = password_signin(server, "bert")
    assert "session" in body and not body.get("mfa_required"), body
    assert not body.get("mfa_enrolment_required"), body
    r = s.get(server.api("/me/mfa"))
    assert r.status_code == 200 and r.json()["enrolment_required"] is False

    # In a child group of A: required too.
    s, body = password_signin(server, "cleo")
    assert body["mfa_enrolment_required"] is True and "session" not in body

    # In A with TOTP: a code is due, and the code signs in.
    s, body = password_signin(server, "dina")
    assert body["mfa_required"] is True and "session" not in body, body
    assert body["methods"][0] == "totp"
    r = s.post(server.api("/session/mfa"),
               json={"method": "totp", "code": totp(secret, 1)})
    assert r.status_code == 200, r.text
    assert s.get(server.api("/me")).status_code == 200

    # Removing alma from A lifts the requirement.
    r = admin.delete(server.api(f"/groups/{a['id']}/members/{users['alma']}"))
    assert r.status_code == 204, r.text
    s, body = password_signin(server, "alma")
    assert "session" in body and not body.get("mfa_enrolment_required"), body

    # Moving cleo's group out from under A lifts it for her too.
    r = admin.patch(server.api(f"/groups/{a_child['id']}"),
                    json={"parent_id": None})
    assert r.status_code == 200, r.text
    s, body = password_signin(server, "cleo")
    assert "session" in body, body

    # A grace window: bert's group B becomes required with 7 days, so he
    # signs in with a reminder; /me/mfa says enrolment is required.
    r = admin.patch(server.api("/mfa-policy"),
                    json={"required_groups": [a["id"], b["id"]],
                          "grace_days": 7})
    assert r.status_code == 200, r.text
    assert r.json()["required_groups_since"][a["id"]] == \
        pol["required_groups_since"][a["id"]]
    s, body = password_signin(server, "bert")
    assert "session" in body and body["mfa_enrolment_required"] is True
    assert s.get(server.api("/me/mfa")).json()["enrolment_required"] is True

    # Deleting a group drops it from the policy.
    r = admin.delete(server.api(f"/groups/{b['id']}"))
    assert r.status_code == 204, r.text
    assert admin.get(server.api("/mfa-policy")).json()["required_groups"] \
        == [a["id"]]
    ev = server.query("SELECT changes FROM audit_events WHERE action = "
                      "'group.delete' AND target_id = ?", (b["id"],))
    assert '"mfa_required_group_dropped":true' in \
        ev[0]["changes"].replace(" ", "")


def test_cli_creates_lists_and_manages_members(server, admin):
    uid = server.create_user(admin, "omar", password=USER_PASSWORD)["id"]
    r = server.cli("group", "create", "--org", server.org, "Support")
    assert "created group Support" in r.stdout, r.stdout
    r = server.cli("group", "create", "--org", server.org, "support",
                   check=False)
    assert r.returncode == 1 and "exists" in r.stderr, r.stderr
    r = server.cli("group", "create", "--org", server.org, "bad/name",
                   check=False)
    assert r.returncode == 2, r.stderr
    groups = server.cli_json("group", "list", "--org", server.org)
    assert [g["name"] for g in groups] == ["Support"]
    gid = groups[0]["id"]

    r = server.cli("group", "add-member", "--org", server.org, "SUPPORT",
                   "omar")
    assert "added omar to Support" in r.stdout, r.stdout
    r = admin.get(server.api(f"/groups/{gid}/members"))
    assert [m["id"] for m in r.json()["members"]] == [uid]
    r = server.cli("group", "add-member", "--org", server.org, gid, "nobody",
                   check=False)
    assert r.returncode == 1 and "no user" in r.stderr, r.stderr
    r = server.cli("group", "remove-member", "--org", server.org, gid, "omar")
    assert "removed omar from Support" in r.stdout, r.stdout
    r = server.cli("group", "remove-member", "--org", server.org, gid, "omar",
                   check=False)
    assert r.returncode == 1 and "not a member" in r.stderr, r.stderr
    assert audit(server, gid) == ["group.create", "group.member.add",
                                  "group.member.remove"]
    actors = server.query("SELECT actor_type FROM audit_events WHERE "
                          "target_id = ?", (gid,))
    assert {a["actor_type"] for a in actors} == {"operator"}
