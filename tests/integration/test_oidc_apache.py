"""A relying party nobody here wrote: Apache httpd with mod_auth_openidc
(Debian) protects a page with Gatehouse as its OpenID provider. A
cookie-following client asks for the page, signs in on Gatehouse's HTML
form and must get the page with the user's claims (passed by the module
as environment variables, echoed by mod_headers); then logs out through
the module, which uses Gatehouse's RP-initiated logout. A second test
ends the Gatehouse session from the admin API and checks that the module
heard of it by back-channel logout."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import USER_PASSWORD, free_port


def col(server, sql):
    return [next(iter(r.values())) for r in server.query(sql)]

APACHE = "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"

pytestmark = pytest.mark.skipif(
    not (os.path.exists(APACHE) and
         os.path.exists(f"{MODULES}/mod_auth_openidc.so")),
    reason="apache2 and libapache2-mod-auth-openidc are not installed")


CONF = """
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/httpd.pid"
ErrorLog "{root}/error.log"
LogLevel warn auth_openidc:info
User nobody
Group nogroup
DefaultRuntimeDir "{root}"
Mutex file:{root}
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authn_core_module {mods}/mod_authn_core.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule authz_user_module {mods}/mod_authz_user.so
LoadModule headers_module {mods}/mod_headers.so
LoadModule auth_openidc_module {mods}/mod_auth_openidc.so
DocumentRoot "{root}/htdocs"
<Directory "{root}/htdocs">
    Require all granted
</Directory>

OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCClientID {client_id}
OIDCClientSecret {client_secret}
OIDCRedirectURI http://127.0.0.1:{port}/protected/redirect_uri
OIDCCryptoPassphrase {passphrase}
OIDCScope "openid email profile"
OIDCPKCEMethod S256
OIDCPassClaimsAs environment
OIDCSSLValidateServer Off
OIDCProviderTokenEndpointAuth client_secret_basic
# Access tokens live 60 s: refreshing whenever less than an hour is left
# makes the module refresh on the next request.
OIDCRefreshAccessTokenBeforeExpiry 3600

<Location /protected>
    AuthType openid-connect
    Require valid-user
    Header set X-Claim-Sub "%{{OIDC_CLAIM_sub}}e"
    Header set X-Claim-Email "%{{OIDC_CLAIM_email}}e"
</Location>
"""


@pytest.fixture
def apache_root():
    # Outside pytest's private tmp: the workers run as nobody.
    root = Path(tempfile.mkdtemp(prefix="gh-apache-"))
    os.chmod(root, 0o755)
    (root / "htdocs" / "protected").mkdir(parents=True)
    (root / "htdocs" / "protected" / "page.html").write_text("secret page\n")
    (root / "htdocs" / "bye.html").write_text("signed out\n")
    for p in (root / "htdocs", root / "htdocs" / "protected"):
        os.chmod(p, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def start_apache(root, port):
    out = open(root / "stderr.log", "wb")
    proc = subprocess.Popen([APACHE, "-f", str(root / "httpd.conf"),
                             "-DFOREGROUND"], stdin=subprocess.DEVNULL,
                            stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    out.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = "".join(p.read_text() for p in (
                root / "error.log", root / "stderr.log") if p.exists())
            raise AssertionError(f"apache exited {proc.returncode}: {log}")
        try:
            requests.get(f"http://127.0.0.1:{port}/bye.html", timeout=2)
            return proc
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("apache did not start")


def stop_apache(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_mod_auth_openidc_signs_in_and_out(server, admin, apache_root):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    issuer = f"{server.base}/o/{server.org}"
    user = server.create_user(admin, "alice", USER_PASSWORD,
                              email="alice@example.com")
    r = admin.post(server.api("/apps"), json={
        "name": "apache", "kind": "oidc", "first_party": True}, timeout=30)
    app_id = r.json()["id"]
    r = admin.put(server.api(f"/apps/{app_id}/oidc"), json={
        "redirect_uris": [f"{base}/protected/redirect_uri"],
        "post_logout_redirect_uris": [f"{base}/bye.html"],
        "access_token_lifetime_s": 60}, timeout=30)
    assert r.status_code == 200, r.text
    secret = admin.post(server.api(f"/apps/{app_id}/oidc/secret"),
                        timeout=30).json()["client_secret"]
    r = admin.post(server.api(f"/apps/{app_id}/assignments"),
                   json={"user_id": user["id"]}, timeout=30)
    assert r.status_code == 201
    (apache_root / "httpd.conf").write_text(CONF.format(
        root=apache_root, port=port, mods=MODULES, issuer=issuer,
        client_id=app_id, client_secret=secret,
        passphrase=os.urandom(16).hex()))
    proc = start_apache(apache_root, port)
    try:
        s = requests.Session()
        r = s.get(f"{base}/protected/page.html", timeout=30)
        # Landed on Gatehouse's sign-in form.
        assert r.status_code == 200, r.text[:500]
        assert r.url.startswith(f"{issuer}/login"), r.url
        csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                         r.text).group(1)
        r = s.post(f"{issuer}/login", data={
            "username": "alice", "password": USER_PASSWORD,
            "csrf_token": csrf}, timeout=30)
        assert r.status_code == 200, (r.url, r.text[:500], (
            apache_root / "error.log").read_text()[-3000:])
        assert r.url == f"{base}/protected/page.html"
        assert r.text == "secret page\n"
        assert r.headers["X-Claim-Sub"] == user["id"]
        assert r.headers["X-Claim-Email"] == "alice@example.com"
        # The module's session holds: no new sign-in, and it refreshes
        # its tokens with the refresh token (rotated by Gatehouse).
        r = s.get(f"{base}/protected/page.html", allow_redirects=False,
                  timeout=30)
        assert r.status_code == 200
        assert r.headers["X-Claim-Sub"] == user["id"]
        grants = [json.loads(c)["grant_type"] for c in col(
            server, "SELECT changes FROM audit_events WHERE action = "
            "'oidc.token.issue'")]
        assert grants[0] == "authorization_code"
        assert "refresh_token" in grants, (grants, (
            apache_root / "error.log").read_text()[-3000:])
        used = col(server, "SELECT count(*) FROM oidc_tokens WHERE kind = "
                   "'refresh' AND used_at IS NOT NULL")
        assert used[0] >= 1
        # Logout through the module and Gatehouse's end_session_endpoint.
        r = s.get(f"{base}/protected/redirect_uri",
                  params={"logout": f"{base}/bye.html"}, timeout=30)
        assert r.status_code == 200, r.text[:300]
        assert r.url.startswith(f"{base}/bye.html"), r.url
        assert r.text == "signed out\n"
        # Signed out at Gatehouse too: the page asks for a sign-in again.
        r = s.get(f"{base}/protected/page.html", timeout=30)
        assert r.url.startswith(f"{issuer}/login"), r.url
    finally:
        stop_apache(proc)


def test_mod_auth_openidc_hears_back_channel_logout(server, admin,
                                                    apache_root):
    """Ending the user's Gatehouse sessions ends the module's session too:
    Gatehouse posts a logout token to the module's redirect URI
    (?logout=backchannel), which validates it against the JWKS and drops
    the session named by its sid, so the page asks for a sign-in again."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    issuer = f"{server.base}/o/{server.org}"
    user = server.create_user(admin, "alice", USER_PASSWORD,
                              email="alice@example.com")
    r = admin.post(server.api("/apps"), json={
        "name": "apache", "kind": "oidc", "first_party": True}, timeout=30)
    app_id = r.json()["id"]
    r = admin.put(server.api(f"/apps/{app_id}/oidc"), json={
        "redirect_uris": [f"{base}/protected/redirect_uri"],
        "backchannel_logout_uri":
            f"{base}/protected/redirect_uri?logout=backchannel",
        "backchannel_logout_session_required": True}, timeout=30)
    assert r.status_code == 200, r.text
    secret = admin.post(server.api(f"/apps/{app_id}/oidc/secret"),
                        timeout=30).json()["client_secret"]
    r = admin.post(server.api(f"/apps/{app_id}/assignments"),
                   json={"user_id": user["id"]}, timeout=30)
    assert r.status_code == 201
    (apache_root / "httpd.conf").write_text(CONF.format(
        root=apache_root, port=port, mods=MODULES, issuer=issuer,
        client_id=app_id, client_secret=secret,
        passphrase=os.urandom(16).hex()))
    proc = start_apache(apache_root, port)
    try:
        s = requests.Session()
        r = s.get(f"{base}/protected/page.html", timeout=30)
        assert r.url.startswith(f"{issuer}/login"), r.url
        csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                         r.text).group(1)
        r = s.post(f"{issuer}/login", data={
            "username": "alice", "password": USER_PASSWORD,
            "csrf_token": csrf}, timeout=30)
        assert r.url == f"{base}/protected/page.html", r.url
        assert r.text == "secret page\n"
        # The admin ends alice's sessions.
        r = admin.delete(server.api(f"/users/{user['id']}/sessions"),
                         timeout=30)
        assert r.status_code == 200 and r.json()["revoked"] == 1, r.text
        deadline = time.monotonic() + 15
        done = []
        while time.monotonic() < deadline and not done:
            done = [c for c in col(
                server, "SELECT changes FROM audit_events WHERE action = "
                "'oidc.backchannel_logout'")]
            time.sleep(0.2)
        assert done, "no back-channel logout attempt"
        result = json.loads(done[0])
        assert result["result"] == "delivered", (result, (
            apache_root / "error.log").read_text()[-3000:])
        # The module's session is gone: back to Gatehouse's sign-in.
        r = s.get(f"{base}/protected/page.html", timeout=30)
        assert r.url.startswith(f"{issuer}/login"), (r.url, (
            apache_root / "error.log").read_text()[-3000:])
    finally:
        stop_apache(proc)
