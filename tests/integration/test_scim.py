"""SCIM 2.0 against the real binary (docs/api.md, SCIM 2.0): users and
groups driven with the request shapes of Entra ID's and Okta's
provisioning clients, filters, paging, ETags, the enterprise extension,
deactivation, errors in SCIM's format and bearer authentication."""

import pytest
import requests

from conftest import USER_PASSWORD

CT = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


class Scim:
    def __init__(self, server, token):
        self.server = server
        self.s = server.bearer(token)
        self.s.headers["Content-Type"] = CT

    def url(self, path):
        return f"{self.server.base}/o/{self.server.org}/scim/v2{path}"

    def get(self, path, **kw):
        return self.s.get(self.url(path), timeout=30, **kw)

    def post(self, path, body, **kw):
        return self.s.post(self.url(path), json=body, timeout=30, **kw)

    def put(self, path, body, **kw):
        return self.s.put(self.url(path), json=body, timeout=30, **kw)

    def patch(self, path, ops, **kw):
        return self.s.patch(self.url(path), json={"schemas": [PATCH],
                            "Operations": ops}, timeout=30, **kw)

    def delete(self, path, **kw):
        return self.s.delete(self.url(path), timeout=30, **kw)


def scim_token(server, sess, name="entra", **extra):
    r = sess.post(server.api("/scim-tokens"), json={"name": name, **extra},
                  timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def scim(server, admin):
    return Scim(server, scim_token(server, admin)["token"])


def scim_error(r, status, scim_type=None):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith(CT)
    body = r.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body["detail"]
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def entra_user(name, **extra):
    """The body Entra ID's provisioning service POSTs to /Users."""
    return {
        "schemas": [USER, ENT],
        "externalId": f"{name}-ext",
        "userName": f"{name}@example.com",
        "active": True,
        "displayName": f"{name.title()} Example",
        "emails": [{"primary": True, "type": "work",
                    "value": f"{name}@example.com"}],
        "name": {"formatted": f"{name.title()} Example",
                 "familyName": "Example", "givenName": name.title()},
        ENT: {"employeeNumber": "1001", "department": "Support",
              "costCenter": "CC-7", "organization": "Acme",
              "division": "EU", "manager": {"value": "m-42"}},
        **extra,
    }


def okta_user(name):
    """The body Okta's SCIM 2.0 app POSTs to /Users."""
    return {
        "schemas": [USER],
        "userName": f"{name}@example.org",
        "name": {"givenName": name.title(), "familyName": "Okta"},
        "emails": [{"primary": True, "value": f"{name}@example.org",
                    "type": "work"}],
        "displayName": f"{name.title()} Okta",
        "locale": "en-US",
        "externalId": f"00u{name}",
        "groups": [],
        "active": True,
    }


def audit_actions(server, target):
    return [r["action"] for r in server.query(
        "SELECT action FROM audit_events WHERE target_id = ? ORDER BY seq",
        (target,))]


def test_bearer_token_required(server, admin, scim):
    r = requests.get(scim.url("/Users"), timeout=10)
    scim_error(r, 401)
    assert r.headers.get("WWW-Authenticate") == "Bearer"
    scim_error(requests.get(scim.url("/Users"), headers={
        "Authorization": "Bearer gh_notatoken"}, timeout=10), 401)
    # A session cookie is not a SCIM credential.
    scim_error(admin.get(scim.url("/Users"), timeout=10), 401)
    # The token of an admin who became a member is refused.
    m = server.create_user(admin, "mem", password=USER_PASSWORD, role="admin")
    tok = server.create_token(server.login("mem", USER_PASSWORD), "m")["token"]
    assert Scim(server, tok).get("/Users").status_code == 200
    r = admin.patch(server.api(f"/users/{m['id']}"), json={"role": "member"})
    assert r.status_code == 200, r.text
    scim_error(Scim(server, tok).get("/Users"), 403)


def test_discovery(scim):
    r = scim.get("/ServiceProviderConfig")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith(CT)
    spc = r.json()
    assert spc["patch"]["supported"] and spc["filter"]["supported"]
    assert spc["etag"]["supported"] and not spc["bulk"]["supported"]
    rt = scim.get("/ResourceTypes").json()
    assert {x["id"] for x in rt["Resources"]} == {"User", "Group"}
    sc = scim.get("/Schemas").json()
    assert {x["id"] for x in sc["Resources"]} == {USER, GROUP, ENT}
    r = scim.get("/ResourceTypes/User")
    assert r.status_code == 200 and r.json()["schemaExtensions"][0][
        "schema"] == ENT
    r = scim.get(f"/Schemas/{ENT}")
    assert r.status_code == 200
    assert "department" in {a["name"] for a in r.json()["attributes"]}
    scim_error(scim.get("/Schemas/urn:nope"), 404)
    scim_error(scim.get("/ResourceTypes/Widget"), 404)


def test_entra_user_lifecycle(server, scim):
    # Entra first asks whether the user exists.
    r = scim.get("/Users", params={"filter": 'userName eq "ada@example.com"'})
    assert r.status_code == 200
    assert r.json()["totalResults"] == 0 and r.json()["Resources"] == []

    r = scim.post("/Users", entra_user("ada"))
    assert r.status_code == 201, r.text
    u = r.json()
    assert r.headers["Location"].endswith(f"/scim/v2/Users/{u['id']}")
    assert r.headers["ETag"] == u["meta"]["version"]
    assert u["meta"]["version"].startswith('W/"')
    assert u["meta"]["resourceType"] == "User"
    assert u["userName"] == "ada@example.com" and u["active"] is True
    assert u["externalId"] == "ada-ext"
    assert u["emails"][0]["value"] == "ada@example.com"
    assert u["name"]["givenName"] == "Ada"
    assert u["name"]["familyName"] == "Example"
    assert u[ENT] == {"employeeNumber": "1001", "department": "Support",
                      "costCenter": "CC-7", "organization": "Acme",
                      "division": "EU", "manager": {"value": "m-42"}}
    assert ENT in u["schemas"]
    # Stored in the users table and as custom attributes.
    row = server.query("SELECT username, email, display_name, state FROM users "
                       "WHERE id = ?", (u["id"],))[0]
    assert row == {"username": "ada@example.com", "email": "ada@example.com",
                   "display_name": "Ada Example", "state": "active"}
    assert "user.create" in audit_actions(server, u["id"])
    ev = server.query("SELECT actor_type FROM audit_events WHERE action = "
                      "'user.create' AND target_id = ?", (u["id"],))[0]
    assert ev["actor_type"] == "api_token"

    r = scim.get(f"/Users/{u['id']}")
    assert r.status_code == 200 and r.json() == u
    assert r.headers["ETag"] == u["meta"]["version"]

    # The PATCH shapes Entra sends: capitalised ops, string booleans,
    # filtered e-mail paths, URN-prefixed enterprise attributes.
    r = scim.patch(f"/Users/{u['id']}", [
        {"op": "Replace", "path": 'emails[type eq "work"].value',
         "value": "ada.l@example.com"},
        {"op": "Replace", "path": "name.givenName", "value": "Augusta"},
        {"op": "Replace", "path": "displayName", "value": "Augusta Ada"},
        {"op": "Add", "path": f"{ENT}:department", "value": "Research"},
        {"op": "Replace", "path": f"{ENT}:manager", "value": {"value": "m-7"}},
        {"op": "Remove", "path": f"{ENT}:costCenter"},
    ])
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["emails"][0]["value"] == "ada.l@example.com"
    assert p["name"]["givenName"] == "Augusta"
    assert p["displayName"] == "Augusta Ada"
    assert p[ENT]["department"] == "Research"
    assert p[ENT]["manager"] == {"value": "m-7"}
    assert "costCenter" not in p[ENT]
    assert p["meta"]["version"] != u["meta"]["version"]
    assert r.headers["ETag"] == p["meta"]["version"]
    assert "user.update" in audit_actions(server, u["id"])

    # Soft delete: Entra PATCHes active to the string "False".
    r = scim.patch(f"/Users/{u['id']}", [
        {"op": "Replace", "path": "active", "value": "False"}])
    assert r.status_code == 200 and r.json()["active"] is False
    assert server.query("SELECT state FROM users WHERE id = ?",
                        (u["id"],))[0]["state"] == "disabled"
    assert audit_actions(server, u["id"])[-1] == "user.disable"

    r = scim.delete(f"/Users/{u['id']}")
    assert r.status_code == 204
    scim_error(scim.get(f"/Users/{u['id']}"), 404)
    scim_error(scim.delete(f"/Users/{u['id']}"), 404)
    assert "user.delete" in audit_actions(server, u["id"])


def test_okta_user_lifecycle(server, scim):
    r = scim.get("/Users", params={"filter": 'userName eq "bob@example.org"',
                                   "startIndex": "1", "count": "100"})
    assert r.json()["totalResults"] == 0
    r = scim.post("/Users", okta_user("bob"))
    assert r.status_code == 201, r.text
    u = r.json()
    assert u["externalId"] == "00ubob" and u["displayName"] == "Bob Okta"

    # Okta replaces the whole user with PUT.
    body = okta_user("bob")
    body["id"] = u["id"]
    body["name"]["familyName"] = "Renamed"
    body["emails"] = [{"primary": True, "value": "bob2@example.org",
                       "type": "work"}]
    r = scim.put(f"/Users/{u['id']}", body)
    assert r.status_code == 200, r.text
    assert r.json()["name"]["familyName"] == "Renamed"
    assert r.json()["emails"][0]["value"] == "bob2@example.org"

    # Okta deactivates with a PATCH without a path.
    r = scim.patch(f"/Users/{u['id']}", [
        {"op": "replace", "value": {"active": False}}])
    assert r.status_code == 200 and r.json()["active"] is False
    # ... and reactivates the same way.
    r = scim.patch(f"/Users/{u['id']}", [
        {"op": "replace", "value": {"active": True}}])
    assert r.status_code == 200 and r.json()["active"] is True

    # userName cannot be renamed; a taken userName is a uniqueness error.
    body["userName"] = "other@example.org"
    scim_error(scim.put(f"/Users/{u['id']}", body), 400, "mutability")
    scim_error(scim.post("/Users", okta_user("bob")), 409, "uniqueness")
    scim_error(scim.post("/Users", {**okta_user("x"), "userName":
                                    "BOB@example.org"}), 409, "uniqueness")


def test_deactivated_user_cannot_sign_in(server, admin, scim):
    u = server.create_user(admin, "carol", password=USER_PASSWORD)
    assert server.signin("carol", USER_PASSWORD).status_code == 200
    sess = server.login("carol", USER_PASSWORD)
    r = scim.patch(f"/Users/{u['id']}", [
        {"op": "replace", "path": "active", "value": False}])
    assert r.status_code == 200 and r.json()["active"] is False
    assert server.signin("carol", USER_PASSWORD).status_code != 200
    # Her session ended with the deactivation.
    assert sess.get(server.api("/me"), timeout=10).status_code == 401


def test_enterprise_extension_round_trip_via_attributes(server, admin, scim):
    u = scim.post("/Users", entra_user("eve")).json()
    # The values are custom attributes, visible in the admin API too.
    r = admin.get(server.api(f"/users/{u['id']}"))
    attrs = r.json()["attributes"]
    assert attrs["department"] == "Support"
    assert attrs["employee_number"] == "1001"
    assert attrs["cost_center"] == "CC-7"
    assert attrs["manager_id"] == "m-42"
    assert attrs["scim_external_id"] == "eve-ext"
    defs = {d["name"] for d in admin.get(server.api("/attributes")).json()
            ["attributes"]}
    assert {"department", "division", "organization", "scim_given_name"} <= defs
    # An admin-side change shows in SCIM.
    r = admin.patch(server.api(f"/users/{u['id']}"),
                    json={"attributes": {"department": "Legal"}})
    assert r.status_code == 200, r.text
    assert scim.get(f"/Users/{u['id']}").json()[ENT]["department"] == "Legal"
    # PUT without the extension clears it.
    body = entra_user("eve")
    del body[ENT]
    r = scim.put(f"/Users/{u['id']}", body)
    assert r.status_code == 200 and ENT not in r.json()


def make_users(scim):
    ids = {}
    for n, dept, active in [("ann", "Support", True), ("ben", "Sales", True),
                            ("cat", "Support", False), ("dan", "Ops", True)]:
        body = entra_user(n)
        body[ENT]["department"] = dept
        body["active"] = active
        r = scim.post("/Users", body)
        assert r.status_code == 201, r.text
        ids[n] = r.json()["id"]
    return ids


def names(r):
    assert r.status_code == 200, r.text
    return sorted(x["userName"].split("@")[0] for x in r.json()["Resources"]
                  if x["userName"] != "admin")


@pytest.mark.parametrize("flt,want", [
    ('userName eq "ann@example.com"', ["ann"]),
    ('userName ne "ann@example.com"', ["ben", "cat", "dan"]),
    ('userName co "EN@EXAMPLE"', ["ben"]),
    ('userName sw "b"', ["ben"]),
    ('userName ew "t@example.com"', ["cat"]),
    ('externalId eq "dan-ext"', ["dan"]),
    ('externalId pr', ["ann", "ben", "cat", "dan"]),
    ('emails.value eq "ben@example.com"', ["ben"]),
    ('emails[type eq "work" and value sw "c"]', ["cat"]),
    ('displayName eq "Ann Example"', ["ann"]),
    ('active eq false', ["cat"]),
    ('name.familyName eq "example" and name.givenName gt "Bz"', ["cat", "dan"]),
    ('name.givenName ge "Ben" and name.givenName le "Cat"', ["ben", "cat"]),
    ('name.givenName lt "B"', ["ann"]),
    (f'{ENT}:department eq "Support" and active eq true', ["ann"]),
    ('userName sw "a" or userName sw "d"', ["ann", "dan"]),
    ('not (userName sw "a") and externalId pr', ["ben", "cat", "dan"]),
    ('meta.lastModified gt "2000-01-01T00:00:00Z"', ["ann", "ben", "cat", "dan"]),
    ('meta.created lt "2000-01-01T00:00:00Z"', []),
])
def test_list_filters(scim, flt, want):
    make_users(scim)
    assert names(scim.get("/Users", params={"filter": flt})) == want


def test_paging(scim):
    make_users(scim)
    r = scim.get("/Users", params={"startIndex": "2", "count": "2"})
    body = r.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert body["totalResults"] == 5  # the admin and four
    assert body["startIndex"] == 2 and body["itemsPerPage"] == 2
    all_ids = [x["id"] for x in scim.get("/Users").json()["Resources"]]
    assert [x["id"] for x in body["Resources"]] == all_ids[1:3]
    r = scim.get("/Users", params={"filter": 'externalId pr',
                                   "startIndex": "3", "count": "5"})
    assert r.json()["totalResults"] == 4 and r.json()["itemsPerPage"] == 2
    r = scim.get("/Users", params={"count": "0"})
    assert r.json()["totalResults"] == 5 and r.json()["Resources"] == []
    scim_error(scim.get("/Users", params={"count": "x"}), 400, "invalidValue")


def test_etag_and_if_match(scim):
    u = scim.post("/Users", okta_user("ivy")).json()
    v1 = u["meta"]["version"]
    r = scim.patch(f"/Users/{u['id']}", [
        {"op": "replace", "path": "displayName", "value": "Ivy Two"}],
        headers={"If-Match": v1})
    assert r.status_code == 200
    v2 = r.headers["ETag"]
    assert v2 != v1
    # The stale version is refused for PATCH, PUT and DELETE.
    scim_error(scim.patch(f"/Users/{u['id']}", [
        {"op": "replace", "path": "displayName", "value": "Ivy Three"}],
        headers={"If-Match": v1}), 412)
    scim_error(scim.put(f"/Users/{u['id']}", okta_user("ivy"),
                        headers={"If-Match": v1}), 412)
    scim_error(scim.delete(f"/Users/{u['id']}", headers={"If-Match": v1}), 412)
    assert scim.get(f"/Users/{u['id']}").json()["displayName"] == "Ivy Two"
    assert scim.delete(f"/Users/{u['id']}",
                       headers={"If-Match": v2}).status_code == 204


def test_groups_entra_and_okta(server, scim):
    a = scim.post("/Users", okta_user("gina")).json()["id"]
    b = scim.post("/Users", okta_user("hank")).json()["id"]
    r = scim.get("/Groups", params={"filter": 'displayName eq "Ops Team"',
                                    "excludedAttributes": "members"})
    assert r.status_code == 200 and r.json()["totalResults"] == 0
    r = scim.post("/Groups", {"schemas": [GROUP], "displayName": "Ops Team",
                              "externalId": "g-1", "members": []})
    assert r.status_code == 201, r.text
    g = r.json()
    assert g["displayName"] == "Ops Team" and g["members"] == []
    assert g["externalId"] == "g-1"
    assert r.headers["Location"].endswith(f"/Groups/{g['id']}")
    r = scim.patch(f"/Groups/{g['id']}", [
        {"op": "replace", "path": "externalId", "value": "g-2"}])
    assert r.status_code == 200 and r.json()["externalId"] == "g-2"
    assert server.query("SELECT external_id FROM scim_group_external_ids "
                        "WHERE group_id = ?", (g["id"],)) == [
        {"external_id": "g-2"}]
    scim_error(scim.patch(f"/Groups/{g['id']}", [
        {"op": "replace", "path": "externalId", "value": 7}]),
        400, "invalidValue")
    # Entra: add members with a path.
    r = scim.patch(f"/Groups/{g['id']}", [
        {"op": "Add", "path": "members", "value": [{"value": a}, {"value": b}]}])
    assert r.status_code == 200, r.text
    assert {m["value"] for m in r.json()["members"]} == {a, b}
    assert server.query("SELECT count(*) AS n FROM group_members WHERE "
                        "group_id = ?", (g["id"],))[0]["n"] == 2
    # Okta: remove with a filtered path.
    r = scim.patch(f"/Groups/{g['id']}", [
        {"op": "remove", "path": f'members[value eq "{a}"]'}])
    assert [m["value"] for m in r.json()["members"]] == [b]
    # Entra: remove with a value list; rename via replace without a path.
    r = scim.patch(f"/Groups/{g['id']}", [
        {"op": "Remove", "path": "members", "value": [{"value": b}]},
        {"op": "Replace", "value": {"id": g["id"], "displayName": "Ops"}}])
    assert r.status_code == 200, r.text
    assert r.json()["members"] == [] and r.json()["displayName"] == "Ops"
    ev = server.query("SELECT changes FROM audit_events WHERE target_id = ? "
                      "AND action = 'group.member.add' ORDER BY seq", (g["id"],))
    assert '"username":"gina@example.org"' in ev[0]["changes"].replace(" ", "")
    acts = audit_actions(server, g["id"])
    assert acts.count("group.member.add") == 2
    assert acts.count("group.member.remove") == 2
    assert "group.create" in acts and "group.update" in acts
    # Okta PUT with the full member list.
    r = scim.put(f"/Groups/{g['id']}", {"schemas": [GROUP], "id": g["id"],
                                        "displayName": "Ops",
                                        "members": [{"value": a}]})
    assert r.status_code == 200 and [m["value"] for m in r.json()["members"]] == [a]
    assert "externalId" not in r.json()  # PUT without it clears it
    r = scim.get(f"/Groups/{g['id']}", params={"excludedAttributes": "members"})
    assert "members" not in r.json()
    r = scim.get("/Groups", params={"filter": f'members.value eq "{a}"'})
    assert [x["id"] for x in r.json()["Resources"]] == [g["id"]]
    # Errors: unknown member, taken name, bad name, unknown group.
    scim_error(scim.patch(f"/Groups/{g['id']}", [
        {"op": "add", "path": "members", "value": [{"value": "nobody"}]}]),
        400, "invalidValue")
    scim.post("/Groups", {"schemas": [GROUP], "displayName": "Other"})
    scim_error(scim.post("/Groups", {"schemas": [GROUP], "displayName": "OPS"}),
               409, "uniqueness")
    scim_error(scim.post("/Groups", {"schemas": [GROUP], "displayName": "a/b"}),
               400, "invalidValue")
    scim_error(scim.get("/Groups/0123456789abcdef0123456789abcdef"), 404)
    assert scim.delete(f"/Groups/{g['id']}").status_code == 204
    scim_error(scim.get(f"/Groups/{g['id']}"), 404)
    assert "group.delete" in audit_actions(server, g["id"])
    assert server.query("SELECT count(*) AS n FROM scim_group_external_ids")[
        0]["n"] == 0


@pytest.mark.parametrize("flt,kind", [
    ('userName eq', "invalidFilter"),
    ('userName xx "a"', "invalidFilter"),
    ('(userName eq "a"', "invalidFilter"),
    ('userName eq "a" and', "invalidFilter"),
    ('emails[type eq "work"', "invalidFilter"),
    ("(" * 11 + 'a pr' + ")" * 11, "tooMany"),
    (" or ".join(["a pr"] * 30), "tooMany"),
    ('userName eq "' + "x" * 1100 + '"', "tooMany"),
])
def test_bad_filters(scim, flt, kind):
    scim_error(scim.get("/Users", params={"filter": flt}), 400, kind)


def test_bad_bodies(scim):
    u = scim.post("/Users", okta_user("kim")).json()
    scim_error(scim.post("/Users", {"schemas": [USER]}), 400, "invalidValue")
    scim_error(scim.post("/Users", {**okta_user("lee"), "active": "maybe"}),
               400, "invalidValue")
    scim_error(scim.post("/Users", {**okta_user("lee"),
                                    "emails": [{"value": "not-an-address"}]}),
               400, "invalidValue")
    scim_error(scim.post("/Users", {**okta_user("lee"), "password": "pw"}),
               400, "invalidValue")
    r = scim.s.post(scim.url("/Users"), data="{nope", timeout=10)
    scim_error(r, 400, "invalidSyntax")
    r = scim.s.post(scim.url("/Users"), data="{}", timeout=10,
                    headers={"Content-Type": "text/plain"})
    scim_error(r, 400, "invalidSyntax")
    scim_error(scim.patch(f"/Users/{u['id']}", []), 400, "invalidSyntax")
    scim_error(scim.patch(f"/Users/{u['id']}", [{"op": "move", "path": "a"}]),
               400, "invalidSyntax")
    scim_error(scim.patch(f"/Users/{u['id']}", [
        {"op": "replace", "path": "emails[type eq", "value": "x"}]),
        400, "invalidPath")
    scim_error(scim.patch(f"/Users/{u['id']}", [
        {"op": "replace", "path": "active", "value": "perhaps"}]),
        400, "invalidValue")
    scim_error(scim.patch("/Users/0123456789abcdef0123456789abcdef", [
        {"op": "replace", "path": "active", "value": False}]), 404)
    # Plain application/json is accepted too.
    r = scim.s.get(scim.url(f"/Users/{u['id']}"), timeout=10)
    assert r.status_code == 200


def test_owner_is_protected_from_admin_tokens(server, admin):
    server.create_user(admin, "adm", password=USER_PASSWORD, role="admin")
    tok = server.create_token(server.login("adm", USER_PASSWORD), "a")["token"]
    s = Scim(server, tok)
    owner = admin.signin_body["user"]["id"]
    scim_error(s.patch(f"/Users/{owner}", [
        {"op": "replace", "path": "active", "value": False}]), 403)
    scim_error(s.delete(f"/Users/{owner}"), 403)


def test_scim_tokens(server, admin):
    t = scim_token(server, admin, "okta", expires_in_days=30)
    assert t["token"].startswith("ghs_") and len(t["token"]) == 47
    assert t["name"] == "okta" and t["created_by"] == admin.user["id"]
    listed = admin.get(server.api("/scim-tokens")).json()["scim_tokens"]
    assert [x["id"] for x in listed] == [t["id"]]
    assert "token" not in listed[0] and t["token"] not in admin.get(
        server.api("/scim-tokens")).text
    # Stored as a digest only.
    row = server.query("SELECT token_hash FROM scim_tokens WHERE id = ?",
                       (t["id"],))[0]
    assert t["token"] not in row["token_hash"] and len(row["token_hash"]) == 64
    s = Scim(server, t["token"])
    u = s.post("/Users", okta_user("tess")).json()
    ev = server.query("SELECT actor_type, actor_id FROM audit_events WHERE "
                      "action = 'user.create' AND target_id = ?", (u["id"],))[0]
    assert ev == {"actor_type": "api_token", "actor_id": t["id"]}
    assert admin.get(server.api("/scim-tokens")).json()["scim_tokens"][0][
        "last_used_at"] is not None
    # Good for SCIM only.
    r = server.bearer(t["token"]).get(server.api("/users"), timeout=10)
    assert r.status_code == 401
    # It acts as an admin that may not touch owners.
    scim_error(s.patch(f"/Users/{admin.user['id']}", [
        {"op": "replace", "path": "active", "value": False}]), 403)
    # Revoked: refused at once; a second revoke is 404.
    assert admin.delete(server.api(f"/scim-tokens/{t['id']}")).status_code == 204
    scim_error(s.get("/Users"), 401)
    r = admin.delete(server.api(f"/scim-tokens/{t['id']}"))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert admin.get(server.api("/scim-tokens")).json()["scim_tokens"] == []
    assert audit_actions(server, t["id"]) == ["scim_token.create",
                                              "scim_token.revoke"]
    # Bad bodies and callers.
    for body in ({}, {"name": ""}, {"name": "x" * 65},
                 {"name": "a", "expires_in_days": 0},
                 {"name": "a", "expires_in_days": 732},
                 {"name": "a", "scope": "all"}):
        r = admin.post(server.api("/scim-tokens"), json=body)
        assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    server.create_user(admin, "plain", password=USER_PASSWORD)
    mem = server.login("plain", USER_PASSWORD)
    assert mem.post(server.api("/scim-tokens"),
                    json={"name": "x"}).status_code == 403
    assert requests.get(server.api("/scim-tokens"),
                        timeout=10).status_code == 401
    scim_error(Scim(server, "ghs_" + "A" * 43).get("/Users"), 401)


def test_admin_api_token_also_works(server, admin):
    s = Scim(server, server.create_token(admin, "scim", days=1)["token"])
    r = s.post("/Users", okta_user("uma"))
    assert r.status_code == 201, r.text
    tok = server.query("SELECT actor_id FROM audit_events WHERE action = "
                       "'user.create' AND target_id = ?", (r.json()["id"],))
    assert tok[0]["actor_id"] == server.query(
        "SELECT id FROM api_tokens WHERE name = 'scim'")[0]["id"]
