"""A third-party relying party against the OpenID Connect provider
(docs/api.md, OpenID Connect): tests/browser/oidc_client.mjs uses
openid-client (npm) for discovery, the code flow with PKCE S256, state and
nonce through the HTML sign-in form, ID token validation, userinfo, the
refresh grant (with rotation), the client credentials grant and
RP-initiated logout (buildEndSessionUrl with id_token_hint,
post_logout_redirect_uri and state): the redirect lands on the registered
URI with the state, the Gatehouse session ends, and the tokens issued in
that session are revoked (refresh answers invalid_grant)."""

import json
import os
import shutil
import socket
import subprocess

from conftest import REPO, SLOW, USER_PASSWORD

BROWSER_DIR = REPO / "tests" / "browser"
SCRIPT = BROWSER_DIR / "oidc_client.mjs"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def oidc_app(server, admin, redirect_uri, post_logout_uri=None):
    r = admin.post(server.api("/apps"), json={
        "name": "openid-client-rp", "kind": "oidc", "first_party": True},
        timeout=30)
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    r = admin.put(server.api(f"/apps/{app_id}/oidc"), json={
        "client_type": "confidential",
        "token_endpoint_auth_method": "client_secret_basic",
        "redirect_uris": [redirect_uri],
        "post_logout_redirect_uris": [post_logout_uri] if post_logout_uri
        else [],
        "grant_types": ["authorization_code", "refresh_token",
                        "client_credentials"]}, timeout=30)
    assert r.status_code == 200, r.text
    r = admin.post(server.api(f"/apps/{app_id}/oidc/secret"), timeout=30)
    assert r.status_code == 201, r.text
    return app_id, r.json()["client_secret"]


def run_rp(env):
    node = shutil.which("node")
    assert node, "node is missing: scripts/install-deps.sh test"
    assert (BROWSER_DIR / "node_modules" / "openid-client").is_dir(), \
        "openid-client is missing: npm ci --prefix tests/browser is needed"
    r = subprocess.run([node, str(SCRIPT)], cwd=BROWSER_DIR,
                       env=dict(os.environ, **env), capture_output=True,
                       text=True, timeout=120 * SLOW)
    return r


def test_openid_client_code_pkce_refresh_client_credentials(server, admin):
    user = server.create_user(admin, "alice", USER_PASSWORD,
                              email="alice@example.com",
                              display_name="Alice Example")
    port = free_port()
    redirect_uri = f"http://127.0.0.1:{port}/cb"
    post_logout = f"http://127.0.0.1:{port}/signed-out"
    app_id, secret = oidc_app(server, admin, redirect_uri, post_logout)
    r = admin.post(server.api(f"/apps/{app_id}/assignments"),
                   json={"user_id": user["id"]}, timeout=30)
    assert r.status_code == 201, r.text
    env = {"GH_POST_LOGOUT_URI": post_logout,"GH_ISSUER": f"{server.base}/o/{server.org}",
           "GH_CLIENT_ID": app_id, "GH_CLIENT_SECRET": secret,
           "GH_REDIRECT_URI": redirect_uri, "GH_USER": "alice",
           "GH_PASSWORD": USER_PASSWORD, "GH_EXPECT_SUB": user["id"],
           "GH_EXPECT_EMAIL": "alice@example.com"}
    r = run_rp(env)
    assert r.returncode == 0, \
        f"oidc_client.mjs failed ({r.returncode}):\n" \
        f"{r.stderr[-6000:]}\n{r.stdout[-2000:]}"
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    print(json.dumps(summary, indent=1))
    assert summary["ok"] is True
    assert summary["code"]["sub"] == user["id"]
    assert summary["code"]["email"] == "alice@example.com"
    assert summary["code"]["amr"] == ["pwd"]
    assert summary["userinfo"]["name"] == "Alice Example"
    assert summary["refresh"]["reuse_refused"] == "invalid_grant"
    assert summary["client_credentials"]["sub"] == app_id
    # The user agent went through the sign-in form.
    assert any("form" in hop for hop in summary["trace"]), summary["trace"]
    assert summary["logout"] == {
        "landed": post_logout, "state_echoed": True, "me_before": 200,
        "me_after": 401, "refresh_after": "invalid_grant",
        "userinfo_after": summary["logout"]["userinfo_after"]}
    assert summary["logout"]["userinfo_after"] in ("401", "invalid_token")
    # The server agrees: alice signed in on the form once with
    # openid-client's user agent (the second authorization used the
    # session), the first refresh token was rotated, and its replay revoked
    # the whole family; logout revoked the second flow's tokens and ended
    # the session.
    rows = server.query("SELECT result, user_agent FROM signin_events "
                        "WHERE username = 'alice'")
    assert [r["result"] for r in rows] == ["success"], rows
    assert "openid-client" in rows[0]["user_agent"]
    rows = server.query("SELECT used_at, revoked_at FROM oidc_tokens WHERE "
                        "client_id = ? AND kind = 'refresh' "
                        "ORDER BY created_at", (app_id,))
    assert len(rows) == 3, rows
    assert rows[0]["used_at"] is not None
    assert all(r["revoked_at"] is not None for r in rows), rows
    ev = server.query("SELECT changes FROM audit_events WHERE action = "
                      "'oidc.token.revoke' AND target_type = 'session'")
    assert len(ev) == 1 and "logout" in ev[0]["changes"], ev

def test_openid_client_rejects_wrong_secret(server, admin):
    """The script fails (non-zero) when the provider refuses the client:
    the run above cannot pass by skipping its checks."""
    server.create_user(admin, "alice", USER_PASSWORD,
                       email="alice@example.com")
    redirect_uri = f"http://127.0.0.1:{free_port()}/cb"
    app_id, secret = oidc_app(server, admin, redirect_uri)
    user = server.query("SELECT id FROM users WHERE username = 'alice'")[0]
    r = admin.post(server.api(f"/apps/{app_id}/assignments"),
                   json={"user_id": user["id"]}, timeout=30)
    assert r.status_code == 201, r.text
    r = run_rp({"GH_ISSUER": f"{server.base}/o/{server.org}",
                "GH_CLIENT_ID": app_id, "GH_CLIENT_SECRET": secret + "x",
                "GH_REDIRECT_URI": redirect_uri, "GH_USER": "alice",
                "GH_PASSWORD": USER_PASSWORD})
    assert r.returncode != 0, r.stdout
    assert "status 401" in r.stderr, r.stderr[-3000:]
    assert '"ok"' not in r.stdout
