"""Roles, permissions and delegated admins (docs/api.md, "Roles and
permissions") against the real binary.

test_every_admin_route_checks_permission_and_scope is the table-driven
test of issue 5: every /o/{org}/api/v1 route that needs a permission (the
ROUTES table below) is called by every built-in role (ROLES) on a target
inside the user admin's group A and the app admin's app X (side "A") and
on one inside group B and app Y (side "B"), and the answer must be exactly
what the permission table says: allowed (2xx, or the route's own
validation answer), 403 permission_denied (the permission is held in no
scope) or 403 out_of_scope (held, but not over that target).

To cover new routes (SCIM, ...), add rows to ROUTES: a method, a path with
placeholders, the permission, the scope kind of its target and optionally
further (permission, scope) requirements checked in order, a body, a
fresh-target maker and the accepted statuses.
"""

import itertools
import os

import pytest

from conftest import USER_PASSWORD, expect_error

_seq = itertools.count(1)


def uniq(prefix):
    return f"{prefix}{os.getpid()}x{next(_seq)}"


ALL = {"users.read", "users.write", "groups.read", "groups.write",
       "apps.read", "apps.write", "policies.read", "policies.write",
       "roles.read", "roles.write", "audit.read", "signins.read", "org.read",
       "org.write", "keys.write", "attributes.write", "tokens.write",
       "scim.write"}

# Role -> {permission: where it is held}: "org", or the scope name the
# World gives it ("A": group A and its child groups; "X": app X).
ROLES = {
    "owner": {p: "org" for p in ALL},
    "admin": {p: "org" for p in ALL},
    "user_admin": {p: "A" for p in ("users.read", "users.write",
                                    "groups.read", "groups.write",
                                    "signins.read")},
    "app_admin": {p: "X" for p in ("apps.read", "apps.write",
                                   "users.read")},
    "auditor": {p: "org" for p in ("audit.read", "signins.read",
                                   "org.read", "users.read", "groups.read",
                                   "apps.read", "policies.read",
                                   "roles.read")},
    "member": {},
}


class Route:
    """One admin route. scope: "org" (needs the permission org-wide),
    "any" (held in any scope is enough: lists filter, shared definitions),
    "user", "group", "app" or "member" (a group and one of its members:
    both in scope). fresh(world, side) makes a target that the call may consume;
    without it the world's standing targets of that side are used."""

    def __init__(self, method, path, perm, scope, body=None, fresh=None,
                 ok=None, holders=True, also=(), want=None):
        self.method, self.path, self.perm, self.scope = \
            method, path, perm, scope
        self.also = list(also)      # further (perm, scope), checked after
        self.want = want            # want(role, side): overrides the table
        self.body, self.fresh = body, fresh
        self.ok = ok or set()      # extra accepted statuses when allowed
        self.holders = holders      # False: only check that others are refused

    def __repr__(self):
        return f"{self.method} {self.path}"


# ---- the world: an owner session, groups A and B with a user each, apps X
# ---- and Y with a role "agent" each

class World:
    def __init__(self, server, owner):
        self.server, self.owner = server, owner
        self.ga = self.group(uniq("A"))
        self.gb = self.group(uniq("B"))
        self.ua = self.user_in(self.ga["id"])
        self.ub = self.user_in(self.gb["id"])
        self.ax = self.new_app(uniq("X"))
        self.ay = self.new_app(uniq("Y"))
        self.sessions = {"owner": owner}
        self.role_users = {}
        self.make_role_users()

    def api(self, path):
        return self.server.api(path)

    def post(self, path, body, status=201):
        r = self.owner.post(self.api(path), json=body, timeout=30)
        assert r.status_code == status, f"{path}: {r.status_code} {r.text}"
        return r.json()

    def group(self, name, parent=None):
        body = {"name": name}
        if parent:
            body["parent_id"] = parent
        return self.post("/groups", body)

    def user(self, **fields):
        return self.post("/users", {"username": uniq("u"), **fields})

    def add(self, gid, uid):
        r = self.owner.put(self.api(f"/groups/{gid}/members/{uid}"))
        assert r.status_code in (200, 201), r.text

    def new_app(self, name):
        a = self.post("/apps", {"name": name})
        self.post(f"/apps/{a['id']}/roles", {"name": "agent"})
        return a

    def user_in(self, gid):
        u = self.user()
        self.add(gid, u["id"])
        return u

    def assign(self, uid, role, kind="org", ids=()):
        return self.post("/role-assignments", {
            "user_id": uid, "role": role, "scope_kind": kind,
            "scope_ids": list(ids)})

    def make_role_users(self):
        s = self.server
        specs = {
            "admin": ({"role": "admin"}, None),
            "user_admin": ({}, ("user_admin", "groups", [self.ga["id"]])),
            "app_admin": ({}, ("app_admin", "apps", [self.ax["id"]])),
            "auditor": ({}, ("auditor", "org", [])),
            "member": ({}, None),
        }
        for role, (fields, grant) in specs.items():
            name = f"r_{role}"
            u = s.create_user(self.owner, name, USER_PASSWORD, **fields)
            if grant:
                self.assign(u["id"], *grant)
            self.role_users[role] = u
            self.sessions[role] = s.login(name, USER_PASSWORD)

    # Targets of side "A" or "B".
    def gid(self, side):
        return (self.ga if side == "A" else self.gb)["id"]

    def uid(self, side):
        return (self.ua if side == "A" else self.ub)["id"]

    def app(self, side):
        return (self.ax if side == "A" else self.ay)["id"]


def fresh_user(w, side):
    return {"user": w.user_in(w.gid(side))["id"]}


def fresh_group(w, side):
    return {"group": w.group(uniq("c"), parent=w.gid(side))["id"]}


def fresh_member(w, side):
    g = w.group(uniq("m"), parent=w.gid(side))["id"]
    u = w.user()["id"]
    w.add(g, u)
    return {"group": g, "user": u}


def fresh_token(w, side):
    return {"token": w.post("/tokens", {"name": uniq("t")})["id"]}


def fresh_scim_token(w, side):
    return {"scimtoken": w.post("/scim-tokens", {"name": uniq("s")})["id"]}


def fresh_attr(w, side):
    return {"attr": w.post("/attributes", {"name": uniq("a"),
                                           "type": "string"})["name"]}


def fresh_role(w, side):
    return {"role": w.post("/roles", {"name": uniq("role"),
                                      "permissions": ["users.read"]})["id"]}


def fresh_assignment(w, side):
    u = w.user()["id"]
    return {"assignment": w.assign(u, "auditor")["id"]}


def fresh_grantee(w, side):
    return {"grantee": w.user()["id"]}


def new_user_body(w, side, t):
    return {"username": uniq("n")}


def fresh_app(w, side):
    """An app of its own; on side A the app admin's scope takes it in."""
    a = w.new_app(uniq("app"))
    if side == "A":
        w.assign(w.role_users["app_admin"]["id"], "app_admin", "apps",
                 [a["id"]])
    return {"app": a["id"]}


def fresh_app_role(w, side):
    name = uniq("role")
    w.post(f"/apps/{w.app(side)}/roles", {"name": name})
    return {"approle": name}


def fresh_app_assignment(w, side):
    a = w.post(f"/apps/{w.app(side)}/assignments", {"user_id": w.user()["id"]})
    return {"appassign": a["id"]}


def fresh_assignee(w, side):
    """A user assigned to the side's app without a role: on side A the app
    admin may read them, and so give them the app's role "agent"."""
    u = w.user()["id"]
    w.post(f"/apps/{w.app(side)}/assignments", {"user_id": u})
    return {"assignee": u}


NO_MATCH = 'username sw "nobody-matches-this"'


def fresh_rule(w, side):
    return {"rule": w.post("/rules", {
        "name": uniq("rule"), "expression": NO_MATCH,
        "action": {"app_id": w.app(side)}})["id"]}


def new_policy_body(w, side, t):
    return {"name": uniq("p"), "priority": 1000 + next(_seq)}


def fresh_policy(w, side):
    return {"policy": w.post("/security-policies",
                             new_policy_body(w, side, None))["id"]}


def fresh_attached_policy(w, side):
    p = fresh_policy(w, side)
    r = w.owner.put(w.api(
        f"/security-policies/{p['policy']}/groups/{w.gid(side)}"))
    assert r.status_code == 201, r.text
    return p


def any_rule_reader(role, side):
    """GET /rules: apps.read or groups.read in any scope; the list keeps
    the rules whose app or group the caller covers."""
    return "permission_denied" if role == "member" else "ok"


ROUTES = [
    Route("GET", "/org", "org.read", "org"),
    Route("PATCH", "/org", "org.write", "org", body={}),
    Route("GET", "/password-policy", "org.read", "org"),
    Route("PATCH", "/password-policy", "org.write", "org", body={}),
    Route("GET", "/mfa-policy", "org.read", "org"),
    Route("PATCH", "/mfa-policy", "org.write", "org", body={}),
    Route("GET", "/users", "users.read", "any"),
    Route("POST", "/users", "users.write", "org", body=new_user_body),
    Route("GET", "/users/{user}", "users.read", "user"),
    Route("PATCH", "/users/{user}", "users.write", "user",
          body={"display_name": "Changed"}),
    Route("DELETE", "/users/{user}", "users.write", "user", fresh=fresh_user),
    Route("POST", "/users/{user}/disable", "users.write", "user",
          fresh=fresh_user),
    Route("GET", "/users/{user}/sessions", "users.read", "user"),
    Route("DELETE", "/users/{user}/sessions", "users.write", "user"),
    Route("DELETE", "/users/{user}/mfa", "users.write", "user"),
    Route("GET", "/users/{user}/groups", "users.read", "user"),
    Route("GET", "/users/{user}/permissions", "roles.read", "user"),
    Route("POST", "/tokens", "tokens.write", "org", body={"name": "x"}),
    Route("GET", "/tokens", "tokens.write", "org"),
    Route("DELETE", "/tokens/{token}", "tokens.write", "org",
          fresh=fresh_token),
    Route("GET", "/audit", "audit.read", "org"),
    Route("GET", "/signins", "signins.read", "any"),
    Route("GET", "/groups", "groups.read", "any"),
    Route("POST", "/groups", "groups.write", "org",
          body=lambda w, side, t: {"name": uniq("g")}),
    Route("GET", "/groups/{group}", "groups.read", "group"),
    Route("PATCH", "/groups/{group}", "groups.write", "group",
          body={"description": "changed"}),
    Route("DELETE", "/groups/{group}", "groups.write", "group",
          fresh=fresh_group),
    Route("GET", "/groups/{group}/members", "groups.read", "group"),
    Route("PUT", "/groups/{group}/members/{user}", "groups.write", "member"),
    Route("DELETE", "/groups/{group}/members/{user}", "groups.write",
          "member", fresh=fresh_member),
    Route("GET", "/attributes", "users.read", "any"),
    Route("POST", "/attributes", "attributes.write", "org",
          body=lambda w, side, t: {"name": uniq("a"), "type": "string"}),
    Route("GET", "/attributes/{attr}", "users.read", "any", fresh=fresh_attr),
    Route("PATCH", "/attributes/{attr}", "attributes.write", "org",
          body={"required": False}, fresh=fresh_attr),
    Route("DELETE", "/attributes/{attr}", "attributes.write", "org",
          fresh=fresh_attr),
    # An invalid key: holders get past the check to the validation.
    Route("PUT", "/keys/customer", "keys.write", "org", body={"key": "x"},
          ok={400}),
    # Revoking would lock the org's data for the rest of the test: holders
    # are covered by the PUT above, which shares the check.
    Route("DELETE", "/keys/customer", "keys.write", "org", holders=False),
    Route("GET", "/roles", "roles.read", "any"),
    Route("POST", "/roles", "roles.write", "org",
          body=lambda w, side, t: {"name": uniq("r"),
                                   "permissions": ["users.read"]}),
    Route("GET", "/roles/{role}", "roles.read", "any", fresh=fresh_role),
    Route("PATCH", "/roles/{role}", "roles.write", "org",
          body={"description": "changed"}, fresh=fresh_role),
    Route("DELETE", "/roles/{role}", "roles.write", "org", fresh=fresh_role),
    Route("GET", "/role-assignments", "roles.read", "any"),
    Route("POST", "/role-assignments", "roles.write", "org",
          body=lambda w, side, t: {"user_id": t["grantee"],
                                   "role": "auditor"},
          fresh=fresh_grantee),
    Route("DELETE", "/role-assignments/{assignment}", "roles.write", "org",
          fresh=fresh_assignment),
    Route("GET", "/apps", "apps.read", "any"),
    Route("POST", "/apps", "apps.write", "org",
          body=lambda w, side, t: {"name": uniq("app")}),
    Route("GET", "/apps/{app}", "apps.read", "app"),
    Route("PATCH", "/apps/{app}", "apps.write", "app",
          body={"description": "changed"}),
    Route("DELETE", "/apps/{app}", "apps.write", "app", fresh=fresh_app),
    Route("GET", "/apps/{app}/roles", "apps.read", "app"),
    Route("POST", "/apps/{app}/roles", "apps.write", "app",
          body=lambda w, side, t: {"name": uniq("role")}),
    Route("DELETE", "/apps/{app}/roles/{approle}", "apps.write", "app",
          fresh=fresh_app_role),
    Route("GET", "/apps/{app}/assignments", "apps.read", "app"),
    Route("POST", "/apps/{app}/assignments", "apps.write", "app",
          body=lambda w, side, t: {"user_id": t["assignee"],
                                   "role": "agent"},
          fresh=fresh_assignee),
    Route("DELETE", "/apps/{app}/assignments/{appassign}", "apps.write",
          "app", fresh=fresh_app_assignment),
    Route("GET", "/users/{user}/apps", "users.read", "user"),
    # Rules whose action is the side's app; group actions are covered by
    # test_rule_permissions_follow_the_action.
    Route("GET", "/rules", "apps.read", "any", want=any_rule_reader),
    Route("POST", "/rules", "apps.write", "app", also=[("users.write", "org")],
          body=lambda w, side, t: {"name": uniq("rule"),
                                   "expression": NO_MATCH,
                                   "action": {"app_id": w.app(side)}}),
    Route("POST", "/rules/dry-run", "apps.read", "app",
          also=[("users.read", "org")],
          body=lambda w, side, t: {"expression": NO_MATCH,
                                   "action": {"app_id": w.app(side)}}),
    Route("GET", "/rules/{rule}", "apps.read", "app", fresh=fresh_rule),
    Route("PATCH", "/rules/{rule}", "apps.write", "app",
          also=[("users.write", "org")], body={"enabled": False},
          fresh=fresh_rule),
    Route("DELETE", "/rules/{rule}", "apps.write", "app",
          also=[("users.write", "org")], fresh=fresh_rule),
    Route("POST", "/rules/{rule}/dry-run", "apps.read", "app",
          also=[("users.read", "org")], fresh=fresh_rule),
    Route("GET", "/security-policies", "policies.read", "org"),
    Route("POST", "/security-policies", "policies.write", "org",
          body=new_policy_body),
    Route("GET", "/security-policies/{policy}", "policies.read", "org",
          fresh=fresh_policy),
    Route("PATCH", "/security-policies/{policy}", "policies.write", "org",
          body=lambda w, side, t: {"name": uniq("p")}, fresh=fresh_policy),
    Route("DELETE", "/security-policies/{policy}", "policies.write", "org",
          fresh=fresh_policy),
    Route("PUT", "/security-policies/{policy}/groups/{group}",
          "policies.write", "org", also=[("groups.read", "group")],
          fresh=fresh_policy),
    Route("DELETE", "/security-policies/{policy}/groups/{group}",
          "policies.write", "org", also=[("groups.read", "group")],
          fresh=fresh_attached_policy),
    Route("GET", "/users/{user}/effective-policy", "policies.read", "user",
          also=[("users.read", "user")]),
    Route("GET", "/scim-tokens", "scim.write", "org"),
    Route("POST", "/scim-tokens", "scim.write", "org",
          body=lambda w, side, t: {"name": uniq("s")}),
    Route("DELETE", "/scim-tokens/{scimtoken}", "scim.write", "org",
          fresh=fresh_scim_token),
]


def needs(role, perm, scope, side):
    """One requirement: 'ok', 'permission_denied' or 'out_of_scope'."""
    where = ROLES[role].get(perm)
    if where is None:
        return "permission_denied"
    if where == "org" or scope == "any":
        return "ok"
    if scope == "org":
        return "out_of_scope"
    # Scoped: app_admin's "X" covers the apps of side A, user_admin's "A"
    # the users and groups of side A; neither covers the other's targets.
    if scope == "app":
        return "ok" if where == "X" and side == "A" else "out_of_scope"
    return "ok" if where == "A" and side == "A" else "out_of_scope"


def expected(role, route, side):
    """'ok', 'permission_denied' or 'out_of_scope' from the tables: the
    first requirement that fails decides."""
    if route.want:
        return route.want(role, side)
    for perm, scope in [(route.perm, route.scope)] + route.also:
        got = needs(role, perm, scope, side)
        if got != "ok":
            return got
    return "ok"


def call(world, role, route, side):
    t = {"user": world.uid(side), "group": world.gid(side),
         "app": world.app(side)}
    if route.fresh:
        t.update(route.fresh(world, side))
    path = route.path.format(**t)
    body = route.body(world, side, t) if callable(route.body) else route.body
    s = world.sessions[role]
    kw = {"json": body} if body is not None else {}
    return s.request(route.method, world.api(path), timeout=30, **kw)


def outcome(r, route):
    if r.status_code == 403:
        return r.json().get("error")
    if 200 <= r.status_code < 300 or r.status_code in route.ok:
        return "ok"
    return f"unexpected {r.status_code}: {r.text[:200]}"


def test_every_admin_route_checks_permission_and_scope(server, admin):
    world = World(server, admin)
    wrong = []
    for route in ROUTES:
        for role in ROLES:
            for side in ("A", "B"):
                want = expected(role, route, side)
                if want == "ok" and not route.holders:
                    continue
                got = outcome(call(world, role, route, side), route)
                if got != want:
                    wrong.append(f"{role:10} {side} {route!r}: want {want}, "
                                 f"got {got}")
    assert not wrong, "\n".join(wrong)


def test_the_table_names_every_admin_route():
    """ROUTES and docs/api.md's permission table list the same endpoints
    with the same permissions."""
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                            "api.md")).read()
    section = doc.split("### Permission of each endpoint", 1)[1]
    section = section.split("\n#", 1)[0]
    documented = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.split("|")]
            method, path = cells[1].strip("`").split(" ", 1)
            documented[(method, path)] = cells[2].split("`")[1]
    tested = {}
    for r in ROUTES:
        path = r.path
        for a, b in (("/security-policies/{policy}/groups/{group}",
                      "/security-policies/{id}/groups/{group_id}"),
                     ("/assignments/{appassign}",
                      "/assignments/{assignment_id}"),
                     ("/roles/{approle}", "/roles/{name}"),
                     ("{app}", "{id}"), ("{rule}", "{id}"),
                     ("{policy}", "{id}"),
                     ("{user}", "{id}"), ("{group}", "{id}"),
                     ("{token}", "{id}"), ("{scimtoken}", "{id}"), ("{attr}", "{name}"),
                     ("{role}", "{id}"), ("{assignment}", "{id}"),
                     ("/members/{id}", "/members/{user_id}")):
            path = path.replace(a, b)
        tested[(r.method, path)] = r.perm
    assert len(documented) > 40, documented
    assert documented == tested, set(documented.items()) ^ set(tested.items())


# ---- scope filtering ---------------------------------------------------------

@pytest.fixture
def world(server, admin):
    return World(server, admin)


def test_user_admin_lists_only_users_and_groups_in_scope(server, world):
    child = world.group(uniq("child"), parent=world.ga["id"])
    in_child = world.user_in(child["id"])
    ua = world.sessions["user_admin"]
    r = ua.get(server.api("/users?limit=200"))
    assert r.status_code == 200, r.text
    ids = {u["id"] for u in r.json()["users"]}
    assert world.ua["id"] in ids and in_child["id"] in ids
    assert world.ub["id"] not in ids
    assert world.role_users["member"]["id"] not in ids
    r = ua.get(server.api("/groups?limit=200"))
    gids = {g["id"] for g in r.json()["groups"]}
    assert gids == {world.ga["id"], child["id"]}
    # A user of A and B: the user admin of A sees only A among its groups.
    world.add(world.gb["id"], world.ua["id"])
    r = ua.get(server.api(f"/users/{world.ua['id']}/groups"))
    assert r.status_code == 200, r.text
    assert [g["id"] for g in r.json()["direct"]] == [world.ga["id"]]
    assert [g["id"] for g in r.json()["effective"]] == [world.ga["id"]]
    r = world.owner.get(server.api(f"/users/{world.ua['id']}/groups"))
    assert len(r.json()["direct"]) == 2
    # The owner sees everyone.
    r = world.owner.get(server.api("/users?limit=200"))
    assert world.ub["id"] in {u["id"] for u in r.json()["users"]}
    # An app admin sees no user while no one is assigned to its app, then
    # the users assigned to it.
    aa = world.sessions["app_admin"]
    r = aa.get(server.api("/users?limit=200"))
    assert r.status_code == 200 and r.json()["users"] == []
    world.post(f"/apps/{world.ax['id']}/assignments",
               {"user_id": world.ub["id"]})
    r = aa.get(server.api("/users?limit=200"))
    assert [u["id"] for u in r.json()["users"]] == [world.ub["id"]]


def test_user_admin_sees_sign_ins_of_its_users_only(server, world):
    for name in ("r_member", "r_user_admin"):
        server.login(name, USER_PASSWORD)
    world.add(world.ga["id"], world.role_users["member"]["id"])
    r = world.sessions["user_admin"].get(server.api("/signins?limit=200"))
    assert r.status_code == 200, r.text
    users = {e["user_id"] for e in r.json()["signins"]}
    assert users == {world.role_users["member"]["id"]}
    expect_error(world.sessions["user_admin"].get(
        server.api(f"/signins?user_id={world.ub['id']}")), 403,
        "out_of_scope")


def test_scoped_admin_cannot_touch_a_user_who_holds_a_role(server, world):
    auditor = world.role_users["auditor"]
    world.add(world.ga["id"], auditor["id"])
    ua = world.sessions["user_admin"]
    # Readable, being in A, but not writable: no taking over a peer.
    assert ua.get(server.api(f"/users/{auditor['id']}")).status_code == 200
    expect_error(ua.patch(server.api(f"/users/{auditor['id']}"),
                          json={"password": "Another-Long-Passphrase-77!"}),
                 403, "out_of_scope")
    expect_error(ua.post(server.api(f"/users/{auditor['id']}/disable")),
                 403, "out_of_scope")
    # Nor pull an outsider into its group.
    expect_error(ua.put(server.api(
        f"/groups/{world.ga['id']}/members/{world.ub['id']}")),
        403, "out_of_scope")
    # Nor change anyone's role.
    expect_error(ua.patch(server.api(f"/users/{world.ua['id']}"),
                          json={"role": "admin"}), 403, "permission_denied")


# ---- delegation ----------------------------------------------------------------

def test_nobody_grants_themselves_anything(server, world):
    admin_id = world.role_users["admin"]["id"]
    expect_error(world.sessions["admin"].post(
        server.api("/role-assignments"),
        json={"user_id": admin_id, "role": "auditor"}), 403, "self_grant")
    expect_error(world.owner.post(
        server.api("/role-assignments"),
        json={"user_id": world.owner.user["id"], "role": "auditor"}),
        403, "self_grant")


def test_an_admin_cannot_make_owners(server, world):
    s = world.sessions["admin"]
    expect_error(s.patch(server.api(f"/users/{world.ua['id']}"),
                         json={"role": "owner"}), 403, "forbidden")
    expect_error(s.post(server.api("/role-assignments"),
                        json={"user_id": world.ua["id"], "role": "owner"}),
                 400, "invalid_request")
    # An admin may make admins: they hold every permission org-wide.
    r = s.patch(server.api(f"/users/{world.ua['id']}"), json={"role": "admin"})
    assert r.status_code == 200, r.text


def test_delegation_stays_within_the_delegators_scope(server, world):
    perms = ["roles.write", "users.read", "users.write", "groups.read",
             "groups.write", "signins.read"]
    role = world.post("/roles", {"name": uniq("delegate"),
                                 "permissions": perms})
    d = world.user_in(world.ga["id"])
    world.assign(d["id"], role["id"], "groups", [world.ga["id"]])
    r = world.owner.patch(server.api(f"/users/{d['id']}"),
                          json={"password": USER_PASSWORD})
    assert r.status_code == 200, r.text
    s = server.login(d["username"], USER_PASSWORD)
    target = world.user_in(world.ga["id"])
    # user_admin of A to a user of A: within scope.
    r = s.post(server.api("/role-assignments"), json={
        "user_id": target["id"], "role": "user_admin",
        "scope_kind": "groups", "scope_ids": [world.ga["id"]]})
    assert r.status_code == 201, r.text
    granted = r.json()
    # user_admin of B: a scope wider than its own.
    expect_error(s.post(server.api("/role-assignments"), json={
        "user_id": target["id"], "role": "user_admin",
        "scope_kind": "groups", "scope_ids": [world.gb["id"]]}),
        403, "out_of_scope")
    # Org-wide auditor: permissions it does not hold.
    expect_error(s.post(server.api("/role-assignments"), json={
        "user_id": target["id"], "role": "auditor"}), 403,
        "permission_denied")
    # A user outside its groups.
    expect_error(s.post(server.api("/role-assignments"), json={
        "user_id": world.ub["id"], "role": "user_admin",
        "scope_kind": "groups", "scope_ids": [world.ga["id"]]}),
        403, "out_of_scope")
    # It may revoke what it granted, but not an org-wide assignment.
    other = world.assign(world.user_in(world.ga["id"])["id"], "auditor")
    expect_error(s.delete(server.api(f"/role-assignments/{other['id']}")),
                 403, "permission_denied")
    r = s.delete(server.api(f"/role-assignments/{granted['id']}"))
    assert r.status_code == 204, r.text
    # The target's effective permissions are gone again.
    r = world.owner.get(server.api(f"/users/{target['id']}/permissions"))
    assert r.json()["permissions"]["groups"] == {}


def test_custom_roles_validate_and_audit(server, world):
    o = world.owner
    expect_error(o.post(server.api("/roles"), json={
        "name": "bad", "permissions": ["users.read", "users.destroy"]}),
        400, "unknown_permission")
    expect_error(o.post(server.api("/roles"), json={
        "name": "Owner", "permissions": ["users.read"]}),
        400, "invalid_request")
    expect_error(o.post(server.api("/roles"), json={"name": "x"}),
                 400, "invalid_request")
    r = o.post(server.api("/roles"), json={
        "name": "Helpdesk", "permissions": ["users.read", "signins.read"]})
    assert r.status_code == 201, r.text
    role = r.json()
    assert role["permissions"] == ["users.read", "signins.read"]
    expect_error(o.post(server.api("/roles"), json={
        "name": "helpdesk", "permissions": ["users.read"]}), 409,
        "role_exists")
    r = o.patch(server.api(f"/roles/{role['id']}"),
                json={"permissions": ["users.read", "audit.read"]})
    assert r.status_code == 200, r.text
    a = world.assign(world.ua["id"], role["id"])
    expect_error(o.delete(server.api(f"/roles/{role['id']}")), 409,
                 "role_in_use")
    expect_error(o.patch(server.api("/roles/auditor"), json={
        "description": "x"}), 409, "builtin_role")
    # The holder now has what the role says, org-wide.
    r = o.get(server.api(f"/users/{world.ua['id']}/permissions"))
    assert r.json()["permissions"]["org"] == ["users.read", "audit.read"]
    assert o.delete(server.api(
        f"/role-assignments/{a['id']}")).status_code == 204
    assert o.delete(server.api(f"/roles/{role['id']}")).status_code == 204
    actions = [x["action"] for x in server.query(
        "SELECT action FROM audit_events WHERE action LIKE 'role%' "
        "ORDER BY seq")]
    for want in ("role.create", "role.update", "role.delete",
                 "role_assignment.create", "role_assignment.delete"):
        assert want in actions, actions


def test_custom_role_author_needs_every_permission(server, world):
    perms = ["roles.write", "roles.read", "users.read"]
    role = world.post("/roles", {"name": uniq("rolesmith"),
                                 "permissions": perms})
    u = server.create_user(world.owner, "smith", USER_PASSWORD)
    world.assign(u["id"], role["id"])
    s = server.login("smith", USER_PASSWORD)
    expect_error(s.post(server.api("/roles"), json={
        "name": "auditlike", "permissions": ["audit.read"]}),
        403, "permission_denied")
    r = s.post(server.api("/roles"), json={
        "name": "readers", "permissions": ["users.read"]})
    assert r.status_code == 201, r.text
    # Nor can it widen its own role.
    expect_error(s.patch(server.api(f"/roles/{role['id']}"), json={
        "permissions": perms + ["audit.read"]}), 403, "permission_denied")


def test_the_last_owner_stays(server, world):
    o = world.owner
    me = o.user["id"]
    expect_error(o.patch(server.api(f"/users/{me}"), json={"role": "admin"}),
                 409, "last_owner")
    expect_error(o.post(server.api(f"/users/{me}/disable")), 409,
                 "last_owner")
    expect_error(o.delete(server.api(f"/users/{me}")), 409, "last_owner")
    r = o.get(server.api(f"/role-assignments?user_id={me}"))
    assert r.json()["assignments"] == [{
        "id": None, "user_id": me, "role": "owner", "scope_kind": "org",
        "scope_ids": [], "source": "users.role"}]


def test_assignment_input_is_validated(server, world):
    o = world.owner
    uid = world.ua["id"]
    cases = [
        ({"role": "auditor"}, 400, "invalid_request"),
        ({"user_id": "f" * 32, "role": "auditor"}, 404, "user_not_found"),
        ({"user_id": uid, "role": "nobody"}, 400, "unknown_role"),
        ({"user_id": uid, "role": "user_admin"}, 400, "invalid_request"),
        ({"user_id": uid, "role": "user_admin", "scope_kind": "groups"},
         400, "invalid_request"),
        ({"user_id": uid, "role": "user_admin", "scope_kind": "groups",
          "scope_ids": ["f" * 32]}, 400, "unknown_group"),
        ({"user_id": uid, "role": "user_admin", "scope_kind": "groups",
          "scope_ids": ["nope"]}, 400, "invalid_request"),
        ({"user_id": uid, "role": "auditor", "scope_kind": "planet"},
         400, "invalid_request"),
        ({"user_id": uid, "role": "auditor", "scope_ids": [world.ga["id"]]},
         400, "invalid_request"),
        ({"user_id": uid, "role": "auditor", "extra": 1}, 400,
         "invalid_request"),
    ]
    for body, status, code in cases:
        expect_error(o.post(server.api("/role-assignments"), json=body),
                     status, code)
    role = world.post("/roles", {"name": uniq("orgonly"),
                                 "permissions": ["audit.read"]})
    expect_error(o.post(server.api("/role-assignments"), json={
        "user_id": uid, "role": role["id"], "scope_kind": "groups",
        "scope_ids": [world.ga["id"]]}), 400, "scope_not_applicable")
    expect_error(o.delete(server.api(f"/role-assignments/{'f' * 32}")),
                 404, "assignment_not_found")
    expect_error(o.get(server.api(f"/roles/{'f' * 32}")), 404,
                 "role_not_found")


def test_everyone_reads_their_own_permissions(server, world):
    m = world.sessions["member"]
    me = world.role_users["member"]["id"]
    r = m.get(server.api(f"/users/{me}/permissions"))
    assert r.status_code == 200, r.text
    assert r.json()["permissions"]["org"] == []
    expect_error(m.get(server.api(f"/users/{world.ua['id']}/permissions")),
                 403, "permission_denied")
    ua = world.role_users["user_admin"]["id"]
    r = world.sessions["user_admin"].get(server.api(f"/users/{ua}/permissions"))
    p = r.json()["permissions"]
    assert p["groups"]["users.write"] == [world.ga["id"]]
    assert p["org"] == []


def test_deleting_a_group_drops_the_assignments_scoped_to_it(server, world):
    ua = world.role_users["user_admin"]["id"]
    r = world.owner.delete(server.api(f"/groups/{world.ga['id']}"))
    assert r.status_code == 204, r.text
    r = world.owner.get(server.api(f"/role-assignments?user_id={ua}"))
    assert r.json()["assignments"] == []
    expect_error(world.sessions["user_admin"].get(server.api("/users")),
                 403, "permission_denied")
    changes = server.query(
        "SELECT changes FROM audit_events WHERE action = 'group.delete' "
        "AND target_id = ?", (world.ga["id"],))[0]["changes"]
    assert '"role_assignments_removed":1' in changes.replace(" ", "")


# ---- apps, rules and security policies ------------------------------------------

def test_app_admin_manages_its_app_and_nothing_else(server, world):
    aa = world.sessions["app_admin"]
    x, y = world.ax["id"], world.ay["id"]
    r = aa.get(server.api("/apps?limit=200"))
    assert r.status_code == 200, r.text
    assert [a["id"] for a in r.json()["apps"]] == [x]
    r = world.owner.get(server.api("/apps?limit=200"))
    assert {a["id"] for a in r.json()["apps"]} == {x, y}
    r = aa.patch(server.api(f"/apps/{x}"), json={"description": "mine"})
    assert r.status_code == 200 and r.json()["description"] == "mine", r.text
    r = aa.post(server.api(f"/apps/{x}/roles"), json={"name": "lead"})
    assert r.status_code == 201, r.text
    assert aa.get(server.api(f"/apps/{x}/assignments")).status_code == 200
    for method, path, body in [
            ("GET", f"/apps/{y}", None),
            ("PATCH", f"/apps/{y}", {"description": "theirs"}),
            ("DELETE", f"/apps/{y}", None),
            ("GET", f"/apps/{y}/roles", None),
            ("POST", f"/apps/{y}/roles", {"name": "lead"}),
            ("DELETE", f"/apps/{y}/roles/agent", None),
            ("GET", f"/apps/{y}/assignments", None),
            # An app that does not exist looks like any other outside.
            ("GET", f"/apps/{'f' * 32}", None)]:
        expect_error(aa.request(method, server.api(path), json=body),
                     403, "out_of_scope")
    expect_error(aa.post(server.api("/apps"), json={"name": uniq("mine")}),
                 403, "out_of_scope")
    r = world.owner.get(server.api(f"/apps/{y}"))
    assert r.json()["description"] == ""
    assert [ro["name"] for ro in r.json()["roles"]] == ["agent"]
    rows = server.query("SELECT actor_id FROM audit_events WHERE action = "
                        "'app.update' AND target_id = ?", (x,))
    assert [e["actor_id"] for e in rows] == [world.role_users["app_admin"]["id"]]


def test_assigning_to_an_app_needs_read_access_to_the_principal(server, world):
    aa = world.sessions["app_admin"]
    x = world.ax["id"]
    path = server.api(f"/apps/{x}/assignments")
    # Anyone else of the org: the app admin may not read them, so may not
    # pull them into its app (and with it into its users.read scope).
    expect_error(aa.post(path, json={"user_id": world.ua["id"]}), 403,
                 "out_of_scope")
    expect_error(aa.post(path, json={"group_id": world.ga["id"]}), 403,
                 "permission_denied")
    expect_error(aa.get(server.api(f"/users/{world.ua['id']}")), 403,
                 "out_of_scope")
    assert world.owner.get(path).json()["assignments"] == []
    # Given user_admin of group A as well, it may assign A's users and A.
    world.assign(world.role_users["app_admin"]["id"], "user_admin", "groups",
                 [world.ga["id"]])
    r = aa.post(path, json={"user_id": world.ua["id"], "role": "agent"})
    assert r.status_code == 201, r.text
    r = aa.post(path, json={"group_id": world.ga["id"]})
    assert r.status_code == 201, r.text
    expect_error(aa.post(path, json={"user_id": world.ub["id"]}), 403,
                 "out_of_scope")
    expect_error(aa.post(path, json={"group_id": world.gb["id"]}), 403,
                 "out_of_scope")
    # A user the owner assigned is within its scope: it may give them a
    # role of the app and take assignments away again.
    plain = world.post(f"/apps/{x}/assignments", {"user_id": world.ub["id"]})
    assert aa.get(server.api(f"/users/{world.ub['id']}")).status_code == 200
    r = aa.post(path, json={"user_id": world.ub["id"], "role": "agent"})
    assert r.status_code == 201, r.text
    r = aa.delete(server.api(f"/apps/{x}/assignments/{plain['id']}"))
    assert r.status_code == 204, r.text
    r = aa.get(server.api(f"/users/{world.ub['id']}/apps"))
    assert r.status_code == 200, r.text
    assert [a["roles"] for a in r.json()["apps"]] == [["agent"]]


def test_rule_permissions_follow_the_action(server, world):
    def rule(action):
        return world.post("/rules", {"name": uniq("rule"),
                                     "expression": NO_MATCH,
                                     "action": action})["id"]

    ra = rule({"group_id": world.ga["id"]})
    rb = rule({"group_id": world.gb["id"]})
    rx = rule({"app_id": world.ax["id"]})
    ry = rule({"app_id": world.ay["id"]})

    def listed(s):
        r = s.get(server.api("/rules"))
        assert r.status_code == 200, r.text
        return {x["id"] for x in r.json()["rules"]}

    ua, aa = world.sessions["user_admin"], world.sessions["app_admin"]
    assert listed(ua) == {ra}
    assert listed(aa) == {rx}
    assert listed(world.sessions["auditor"]) == {ra, rb, rx, ry}
    assert ua.get(server.api(f"/rules/{ra}")).status_code == 200
    expect_error(ua.get(server.api(f"/rules/{rb}")), 403, "out_of_scope")
    expect_error(ua.get(server.api(f"/rules/{rx}")), 403, "permission_denied")
    assert aa.get(server.api(f"/rules/{rx}")).status_code == 200
    expect_error(aa.get(server.api(f"/rules/{ry}")), 403, "out_of_scope")
    # A rule reaches every user: a user admin of A holds users.write (and
    # users.read) only within A, so it changes and dry-runs no rule.
    expect_error(ua.post(server.api("/rules"), json={
        "name": uniq("rule"), "expression": NO_MATCH,
        "action": {"group_id": world.ga["id"]}}), 403, "out_of_scope")
    expect_error(ua.patch(server.api(f"/rules/{ra}"),
                          json={"enabled": False}), 403, "out_of_scope")
    expect_error(ua.delete(server.api(f"/rules/{ra}")), 403, "out_of_scope")
    expect_error(ua.post(server.api(f"/rules/{ra}/dry-run")), 403,
                 "out_of_scope")
    assert server.query("SELECT COUNT(*) AS n FROM rules")[0]["n"] == 4
    # An org-wide role with the group and user permissions manages group
    # rules, not app rules.
    role = world.post("/roles", {"name": uniq("ruler"), "permissions": [
        "groups.read", "groups.write", "users.read", "users.write"]})
    u = server.create_user(world.owner, "ruler", USER_PASSWORD)
    world.assign(u["id"], role["id"])
    s = server.login("ruler", USER_PASSWORD)
    assert listed(s) == {ra, rb}
    r = s.patch(server.api(f"/rules/{rb}"), json={"enabled": False})
    assert r.status_code == 200, r.text
    r = s.post(server.api(f"/rules/{rb}/dry-run"))
    assert r.status_code == 200, r.text
    expect_error(s.patch(server.api(f"/rules/{ry}"), json={"enabled": False}),
                 403, "permission_denied")
    expect_error(s.delete(server.api(f"/rules/{rx}")), 403,
                 "permission_denied")
    assert s.delete(server.api(f"/rules/{ra}")).status_code == 204
    rows = server.query("SELECT actor_id FROM audit_events WHERE action = "
                        "'rule.delete' AND target_id = ?", (ra,))
    assert [e["actor_id"] for e in rows] == [u["id"]]


def test_policy_group_links_need_the_group_in_scope(server, world):
    role = world.post("/roles", {"name": uniq("policist"), "permissions": [
        "policies.read", "policies.write"]})
    u = server.create_user(world.owner, "policist", USER_PASSWORD)
    world.assign(u["id"], role["id"])
    s = server.login("policist", USER_PASSWORD)
    r = s.post(server.api("/security-policies"),
               json={"name": uniq("p"), "priority": 500})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    ga, gb = world.ga["id"], world.gb["id"]
    link = lambda g: server.api(f"/security-policies/{pid}/groups/{g}")
    # Holding no groups.read, it may attach the policy to no group, nor
    # read anyone's effective policy.
    expect_error(s.put(link(ga)), 403, "permission_denied")
    expect_error(s.get(server.api(f"/users/{world.ua['id']}/"
                                  "effective-policy")),
                 403, "permission_denied")
    # With user_admin of A: group A and its users, not B.
    world.assign(u["id"], "user_admin", "groups", [ga])
    r = s.put(link(ga))
    assert r.status_code == 201, r.text
    expect_error(s.put(link(gb)), 403, "out_of_scope")
    r = s.get(server.api(f"/users/{world.ua['id']}/effective-policy"))
    assert r.status_code == 200, r.text
    expect_error(s.get(server.api(f"/users/{world.ub['id']}/"
                                  "effective-policy")),
                 403, "out_of_scope")
    assert world.owner.put(link(gb)).status_code == 201
    expect_error(s.delete(link(gb)), 403, "out_of_scope")
    assert s.delete(link(ga)).status_code == 204
    r = world.owner.get(server.api(f"/security-policies/{pid}"))
    assert r.json()["groups"] == [gb]
    # A scoped holder of nothing org-wide cannot touch policies at all.
    expect_error(world.sessions["user_admin"].get(
        server.api("/security-policies")), 403, "permission_denied")
