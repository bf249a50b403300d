"""Apps and OpenID Connect clients from the command line (docs/cli.md
"gatehouse app"): clients made by `gatehouse app create` complete a code
flow and a client-credentials grant against the running server, secrets
are printed once and rotate, assignments by username, email or group, and
bad input is refused with a clear message, a non-zero exit and nothing
written. Also the per-client claim settings (docs/api.md "Client
claims"): groups, roles and attribute claims in the ID token and at
userinfo, as configured."""

import re

import requests

from conftest import USER_PASSWORD, expect_error
from test_oidc import (POST_LOGOUT, RP, code_flow, col, issuer, token,
                       verify)


class CliClient:
    """A client made by the CLI; quacks like test_oidc.Client."""

    def __init__(self, server, *extra, name=None):
        self.name = name or "cli-rp"
        r = server.cli("app", "create", "--org", server.org, "--name",
                       self.name, "--kind", "oidc", "--first-party",
                       "--redirect-uri", RP,
                       "--post-logout-redirect-uri", POST_LOGOUT, *extra)
        self.out = r.stdout
        self.id = re.search(r"^client_id: (\w+)$", r.stdout, re.M).group(1)
        m = re.search(r"^client_secret: (\S+)$", r.stdout, re.M)
        self.secret = m.group(1) if m else None


def make_alice(server, admin):
    return server.create_user(admin, "alice", USER_PASSWORD,
                              email="alice@example.com",
                              display_name="Alice Example")


def counts(server):
    return (col(server, "SELECT count(*) FROM apps")[0],
            col(server, "SELECT count(*) FROM oidc_clients")[0],
            col(server, "SELECT count(*) FROM audit_events")[0])


def test_cli_client_does_code_flow_and_client_credentials(server, admin):
    alice = make_alice(server, admin)
    c = CliClient(server, "--grant-type", "authorization_code",
                  "--grant-type", "refresh_token",
                  "--grant-type", "client_credentials")
    assert c.secret and len(c.secret) == 43
    # Printed once: only the digest is stored.
    assert c.secret not in str(server.query(
        "SELECT * FROM oidc_clients"))
    r = server.cli("app", "assign", "--org", server.org, "--app", c.id,
                   "--user", "alice@example.com")
    assert "assigned user" in r.stdout
    _, toks, _, _ = code_flow(server, c)
    claims = verify(server, toks["id_token"])
    assert claims["sub"] == alice["id"] and claims["aud"] == c.id
    assert claims["email"] == "alice@example.com"
    r = token(server, c, {"grant_type": "client_credentials"})
    assert r.status_code == 200, r.text
    assert verify(server, r.json()["access_token"], typ="at+jwt")["sub"] \
        == c.id
    # Every change is audited with the operator as the actor.
    rows = server.query("SELECT action, actor_type FROM audit_events WHERE "
                        "target_id = ? ORDER BY id", (c.id,))
    actions = [r["action"] for r in rows]
    for a in ("app.create", "oidc.client.update", "oidc.secret.rotate",
              "app.assignment.create"):
        assert a in actions, actions
    assert {r["actor_type"] for r in rows if r["action"].startswith(
        ("app.", "oidc.client", "oidc.secret"))} == {"operator"}


def test_cli_secret_rotation_prints_a_new_secret_once(server, admin):
    make_alice(server, admin)
    c = CliClient(server, "--grant-type", "client_credentials")
    old = c.secret
    r = server.cli("app", "secret", "--org", server.org, "--app", c.id)
    c.secret = re.search(r"^client_secret: (\S+)$", r.stdout,
                         re.M).group(1)
    assert c.secret != old
    assert token(server, c, {"grant_type": "client_credentials"}) \
        .status_code == 200
    r = requests.post(issuer(server) + "/oidc/token",
                      data={"grant_type": "client_credentials"},
                      auth=(c.id, old), timeout=30)
    assert r.status_code == 401


def test_cli_public_client_list_show_delete(server, admin):
    make_alice(server, admin)
    c = CliClient(server, "--public", "--claims", '{"roles": false}')
    assert c.secret is None and "client_secret" not in c.out
    r = server.cli("app", "assign", "--org", server.org, "--app", c.id,
                   "--user", "alice")
    _, toks, _, _ = code_flow(server, c)
    assert "roles" not in verify(server, toks["id_token"])
    shown = server.cli_json("app", "show", "--org", server.org, "--app",
                            c.id)
    assert shown["kind"] == "oidc" and shown["first_party"] is True
    assert shown["oidc"]["client_type"] == "public"
    assert shown["oidc"]["token_endpoint_auth_method"] == "none"
    assert shown["oidc"]["pkce_required"] is True
    assert shown["oidc"]["claims"]["roles"] is False
    assert len(shown["assignments"]) == 1
    listed = server.cli_json("app", "list", "--org", server.org)
    assert [a["id"] for a in listed] == [c.id]
    assert c.id in server.cli("app", "list", "--org", server.org).stdout
    # A public client has no secret to rotate.
    r = server.cli("app", "secret", "--org", server.org, "--app", c.id,
                   check=False)
    assert r.returncode == 1 and "public client" in r.stderr
    server.cli("app", "delete", "--org", server.org, "--app", c.id)
    assert col(server, "SELECT count(*) FROM apps")[0] == 0
    assert col(server, "SELECT count(*) FROM oidc_clients")[0] == 0
    r = server.cli("app", "show", "--org", server.org, "--app", c.id,
                   check=False)
    assert r.returncode == 1 and "no app" in r.stderr


def test_cli_assign_group(server, admin):
    alice = make_alice(server, admin)
    server.cli("group", "create", "--org", server.org, "staff")
    server.cli("group", "add-member", "--org", server.org, "staff",
               "alice")
    c = CliClient(server)
    server.cli("app", "assign", "--org", server.org, "--app", c.id,
               "--group", "staff")
    _, toks, _, _ = code_flow(server, c)
    claims = verify(server, toks["id_token"])
    assert claims["sub"] == alice["id"] and claims["groups"] == ["staff"]


def test_cli_bad_input_writes_nothing(server, admin):
    CliClient(server, name="existing")
    before = counts(server)
    base = ["app", "create", "--org", server.org, "--name", "x",
            "--kind", "oidc"]
    cases = [
        (base + ["--redirect-uri", RP, "--grant-type", "implicit"],
         "grant_types must be"),
        (base + ["--redirect-uri", "rp.example/cb"], "redirect_uris[0]"),
        (base + ["--redirect-uri", "http://evil.example/cb"],
         "redirect_uris[0]"),
        (base, "redirect_uris must be"),
        (base + ["--redirect-uri", RP, "--public", "--grant-type",
                 "client_credentials"], "confidential"),
        (base + ["--redirect-uri", RP, "--claims",
                 '{"attributes": {"sub": "department"}}'], "claim name"),
        (base + ["--redirect-uri", RP, "--claims", "[1"], "--claims"),
        (["app", "create", "--org", server.org, "--name", "x", "--kind",
          "weird"], "--kind"),
        (["app", "create", "--org", server.org, "--name", "x",
          "--redirect-uri", RP], "need --kind oidc"),
        (["app", "create", "--org", server.org, "--name", "existing",
          "--kind", "oidc", "--redirect-uri", RP], "exists"),
        (["app", "create", "--org", "nosuchorg", "--name", "x", "--kind",
          "oidc", "--redirect-uri", RP], "no organisation"),
        (["app", "assign", "--org", server.org, "--app", "0" * 32,
          "--user", "admin"], "no app"),
        (["app", "frobnicate", "--org", server.org], "app create|list"),
        (["app", "create", "--org", server.org, "--name", "x",
          "--no-such"], "unknown option"),
    ]
    for args, needle in cases:
        r = server.cli(*args, check=False)
        assert r.returncode != 0, (args, r.stdout)
        assert needle in r.stderr, (args, r.stderr)
        assert "client_secret" not in r.stdout
    assert counts(server) == before


# ---- per-client claims (admin API and CLI share the check) -------------------


def define(server, admin, name, classification):
    r = admin.post(server.api("/attributes"), json={
        "name": name, "type": "string", "classification": classification},
        timeout=30)
    assert r.status_code == 201, r.text


def api_client(server, admin, claims=None):
    r = admin.post(server.api("/apps"), json={
        "name": f"rp-{len(col(server, 'SELECT id FROM apps'))}",
        "kind": "oidc", "first_party": True}, timeout=30)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    body = {"redirect_uris": [RP], "client_type": "public"}
    if claims is not None:
        body["claims"] = claims
    r = admin.put(server.api(f"/apps/{cid}/oidc"), json=body, timeout=30)
    return cid, r


def test_configured_claims_in_id_token_and_userinfo(server, admin):
    define(server, admin, "department", "internal")
    define(server, admin, "salary_band", "sensitive")
    alice = make_alice(server, admin)
    r = admin.patch(server.api(f"/users/{alice['id']}"), json={
        "attributes": {"department": "Sales", "salary_band": "B7"}},
        timeout=30)
    assert r.status_code == 200, r.text
    admin.post(server.api("/groups"), json={"name": "staff"}, timeout=30)
    server.cli("group", "add-member", "--org", server.org, "staff",
               "alice")

    conf, r = api_client(server, admin, {
        "groups": False, "roles": True,
        "attributes": {"department": "department",
                       "https://example.com/dept": "department"}})
    assert r.status_code == 200, r.text
    assert r.json()["claims"] == {
        "groups": False, "roles": True,
        "attributes": {"department": "department",
                       "https://example.com/dept": "department"}}
    plain, r = api_client(server, admin)
    assert r.status_code == 200 and "claims" not in r.json()
    for cid in (conf, plain):
        admin.post(server.api(f"/apps/{cid}/assignments"),
                   json={"user_id": alice["id"]}, timeout=30)

    class C:
        secret = None

    c = C()
    c.id = conf
    _, toks, _, _ = code_flow(server, c)
    idt = verify(server, toks["id_token"])
    assert idt["department"] == "Sales"
    assert idt["https://example.com/dept"] == "Sales"
    assert "groups" not in idt and idt["roles"] == []
    assert "B7" not in str(idt)
    ui = requests.get(issuer(server) + "/oidc/userinfo", headers={
        "Authorization": "Bearer " + toks["access_token"]}, timeout=30)
    assert ui.status_code == 200, ui.text
    assert ui.json()["department"] == "Sales"
    assert "groups" not in ui.json() and ui.json()["roles"] == []

    c.id = plain
    _, toks, _, _ = code_flow(server, c)
    idt = verify(server, toks["id_token"])
    assert "department" not in idt and "https://example.com/dept" not in idt
    assert idt["groups"] == ["staff"] and idt["roles"] == []
    ui = requests.get(issuer(server) + "/oidc/userinfo", headers={
        "Authorization": "Bearer " + toks["access_token"]}, timeout=30)
    assert "department" not in ui.json() and ui.json()["groups"] == ["staff"]

    # An attribute reclassified sensitive later never reaches a token.
    r = admin.patch(server.api("/attributes/department"),
                    json={"classification": "sensitive"}, timeout=30)
    assert r.status_code == 200, r.text
    c.id = conf
    _, toks, _, _ = code_flow(server, c)
    assert "department" not in verify(server, toks["id_token"])


def test_claim_settings_are_validated(server, admin):
    define(server, admin, "department", "internal")
    define(server, admin, "salary_band", "sensitive")
    bad = [
        ({"attributes": {"salary_band": "salary_band"}}, "sensitive"),
        ({"attributes": {"dept": "nosuch"}}, "no attribute"),
        ({"attributes": {"sub": "department"}}, "claim name"),
        ({"attributes": {"email": "department"}}, "claim name"),
        ({"attributes": {"groups": "department"}}, "claim name"),
        ({"attributes": {"1x": "department"}}, "claim name"),
        ({"attributes": {"dept": 5}}, "must name an attribute"),
        ({"attributes": ["department"]}, "claims.attributes"),
        ({"groups": "yes"}, "claims.groups"),
        ({"colour": True}, "unknown member"),
        ("all", "claims must be an object"),
    ]
    for claims, needle in bad:
        _, r = api_client(server, admin, claims)
        expect_error(r, 400, "invalid_request")
        assert needle in r.json()["message"], (claims, r.text)
    # Same check from the CLI.
    r = server.cli("app", "create", "--org", server.org, "--name", "s",
                   "--kind", "oidc", "--redirect-uri", RP, "--claims",
                   '{"attributes": {"band": "salary_band"}}', check=False)
    assert r.returncode == 2 and "sensitive" in r.stderr
