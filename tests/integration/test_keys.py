"""Encryption at rest: key files, no plaintext in database bytes, crypto-
shredding, rotation under load, bring your own key, PKCS#11 (SoftHSM2)."""

import base64
import os
import shutil
import sqlite3
import stat
import subprocess
import threading
import time
import uuid

import pytest

from conftest import (ADMIN, ADMIN_PASSWORD, USER_PASSWORD, child_env,
                      expect_error, free_port, run_cli)


def key_paths(srv):
    d = str(srv.data_dir).rstrip("/")
    return d + ".master-key", d + ".keystore"


def files_under(path):
    for root, _, names in os.walk(path):
        for n in names:
            yield os.path.join(root, n)


def serve_fails(srv, env=None):
    """Runs `serve` expecting it to refuse to start; returns stderr."""
    r = subprocess.run([srv.binary, "serve", "--data-dir", str(srv.data_dir),
                        "--listen", f"127.0.0.1:{free_port()}", "--dev"],
                       capture_output=True, text=True, timeout=60,
                       env=child_env(env), stdin=subprocess.DEVNULL)
    assert r.returncode != 0, r.stdout + r.stderr
    return r.stderr


def test_init_makes_a_0400_key_file_beside_the_data(server):
    key, store = key_paths(server)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o400
    assert os.path.isfile(store)
    data = os.path.realpath(server.data_dir)
    for p in (key, store):
        assert not os.path.realpath(p).startswith(data + os.sep)


def test_serve_refuses_a_key_file_readable_by_others(server_factory):
    srv = server_factory(start=False)
    key, _ = key_paths(srv)
    os.chmod(key, 0o644)
    err = serve_fails(srv)
    assert key in err or "master" in err, err
    os.chmod(key, 0o400)


def test_serve_refuses_a_missing_key_file_and_a_truncated_key_store(server_factory):
    srv = server_factory(start=False)
    key, store = key_paths(srv)
    os.rename(key, key + ".away")
    assert "master" in serve_fails(srv).lower() or key in serve_fails(srv)
    os.rename(key + ".away", key)
    size = os.path.getsize(store)
    with open(store, "r+b") as f:
        f.truncate(size // 2)
    serve_fails(srv)


def test_no_plaintext_secret_in_raw_database_bytes(server, admin):
    marker = "Zebra" + uuid.uuid4().hex[:10]
    email = f"{marker.lower()}@example.org"
    r = admin.post(server.api("/users"), json={
        "username": "plain-check", "email": email,
        "display_name": f"{marker} Display", "password": USER_PASSWORD})
    assert r.status_code == 201, r.text
    assert server.signin("plain-check", USER_PASSWORD).status_code == 200
    token = server.create_token(admin, name=f"{marker}-token")
    secret = token["token"]
    # Everything a tenant owns lives in its database and WAL.
    needles = [marker.encode(), email.encode(), secret.encode(),
               USER_PASSWORD.encode(), ADMIN_PASSWORD.encode()]
    scanned = 0
    for path in files_under(server.data_dir):
        if path.endswith("directory.db") or "directory.db-" in path:
            continue
        with open(path, "rb") as f:
            raw = f.read()
        scanned += len(raw)
        for n in needles:
            assert n not in raw, f"{n!r} in clear in {path}"
    assert scanned > 0
    # And a plain SQLite cannot read the tenant database at all.
    with pytest.raises(sqlite3.DatabaseError):
        c = sqlite3.connect(f"file:{server.tenant_db()}?mode=ro", uri=True)
        try:
            c.execute("SELECT * FROM users").fetchall()
        finally:
            c.close()


def test_shredded_org_and_any_copy_of_it_are_unreadable(server, tmp_path):
    server.cli("org", "create", "beta")
    server.cli("user", "add", "--org", "beta", "bob",
               env={"GATEHOUSE_USER_PASSWORD": USER_PASSWORD})
    beta = server.org_row("beta")
    beta_db = server.data_dir / beta["region"] / f"{beta['id']}.db"
    server.stop()
    copy = tmp_path / "beta-copy"
    copy.mkdir()
    for suffix in ("", "-wal"):
        p = str(beta_db) + suffix
        if os.path.exists(p):
            shutil.copy(p, str(copy / ("beta.db" + suffix)))
    server.cli("org", "delete", "beta")
    r = server.cli("org", "purge", "beta", "--force")
    assert "purged" in r.stdout
    assert not beta_db.exists()
    status = server.cli("keys", "status", "--json").stdout
    assert beta["id"] not in status
    # The copy cannot be read by plain SQLite...
    with pytest.raises(sqlite3.DatabaseError):
        c = sqlite3.connect(str(copy / "beta.db"))
        try:
            c.execute("SELECT * FROM users").fetchall()
        finally:
            c.close()
    # ...nor with the keys that remain: put it in place of acme's database
    # and acme's keys (the only ones left) refuse every page.
    acme_db = server.tenant_db()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(str(acme_db) + suffix):
            os.remove(str(acme_db) + suffix)
    shutil.copy(str(copy / "beta.db"), str(acme_db))
    if (copy / "beta.db-wal").exists():
        shutil.copy(str(copy / "beta.db-wal"), str(acme_db) + "-wal")
    r = server.cli("user", "list", "--org", "acme", check=False)
    assert r.returncode != 0
    assert "bob" not in r.stdout


@pytest.mark.slow
def test_rotation_while_serving_loses_nothing(server, admin):
    acked, errors, stop = [], [], threading.Event()

    def writer():
        s = server.login()
        i = 0
        while not stop.is_set():
            name = f"rot-{i}"
            r = s.post(server.api("/users"), json={"username": name,
                                                   "email": f"{name}@example.org"})
            if r.status_code == 201:
                acked.append(name)
                i += 1
            elif r.status_code == 503:
                time.sleep(0.05)  # busy during a rewrite: retry
            else:
                errors.append((r.status_code, r.text))
            me = s.get(server.api("/me"))
            if me.status_code not in (200, 503):
                errors.append(("me", me.status_code, me.text))

    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(0.5)
        server.cli("keys", "rotate", "--org", "acme")
        time.sleep(0.3)
        server.cli("keys", "rotate", "--master")
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(timeout=60)
    assert not errors, errors[:5]
    assert len(acked) > 5
    names, cursor = set(), None
    while True:
        url = server.api("/users") + "?limit=200&q=rot-"
        if cursor:
            url += f"&cursor={cursor}"
        body = admin.get(url).json()
        names |= {u["username"] for u in body["users"]}
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert set(acked) <= names
    # The server restarts on the rotated keys.
    server.stop()
    server.start()
    assert server.login().get(server.api("/me")).status_code == 200


def test_reencrypt_resumes_and_retires_old_storage_keys(server, admin):
    r = admin.post(server.api("/attributes"), json={
        "name": "passport", "type": "string", "encrypted": True,
        "classification": "sensitive"})
    assert r.status_code == 201, r.text
    r = admin.post(server.api("/users"), json={
        "username": "traveller", "attributes": {"passport": "X1234567"}})
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    server.stop()
    server.cli("keys", "rotate", "--org", "acme")
    # Re-running the re-encryption (as after a crash) is harmless.
    server.cli("keys", "reencrypt", "--org", "acme")
    import json
    st = json.loads(server.cli("keys", "status", "--json").stdout)
    org = next(v for v in st["orgs"].values() if v.get("slug") == "acme")
    versions = org["data_keys"]["storage"]
    assert org["storage_oldest_version_in_use"] == max(versions)
    assert min(versions) == max(versions), versions
    # Attribute values moved to the new attribute key; the old is gone.
    assert org["data_keys"]["attributes"] == [2], org["data_keys"]
    rows = server.query("SELECT key_version FROM user_attributes")
    assert [r["key_version"] for r in rows] == [2]
    server.start()
    s = server.login()
    assert s.get(server.api("/me")).status_code == 200
    u = s.get(server.api(f"/users/{uid}")).json()
    assert u["attributes"]["passport"] == "X1234567"


def test_customer_key_revoke_locks_and_restore_unlocks(server, admin):
    key = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    r = admin.put(server.api("/keys/customer"), json={"key": key})
    assert r.status_code == 204, r.text
    assert admin.get(server.api("/me")).status_code == 200
    r = admin.delete(server.api("/keys/customer"))
    assert r.status_code == 204, r.text
    expect_error(admin.get(server.api("/me")), 503, "org_keys_unavailable")
    expect_error(server.signin(ADMIN, ADMIN_PASSWORD), 503,
                 "org_keys_unavailable")
    wrong = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    r = server.cli("keys", "customer-key", "set", "--org", "acme",
                   env={"GATEHOUSE_CUSTOMER_KEY": wrong}, check=False)
    assert r.returncode != 0
    server.cli("keys", "customer-key", "set", "--org", "acme",
               env={"GATEHOUSE_CUSTOMER_KEY": key})
    # The running server picks the restored key up.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if server.signin(ADMIN, ADMIN_PASSWORD).status_code == 200:
            break
        time.sleep(0.2)
    assert server.signin(ADMIN, ADMIN_PASSWORD).status_code == 200


def test_member_cannot_manage_the_customer_key(server, admin):
    server.create_user(admin, "mem", password=USER_PASSWORD)
    s = server.login("mem", USER_PASSWORD)
    key = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    expect_error(s.put(server.api("/keys/customer"), json={"key": key}),
                 403, "permission_denied")


SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


@pytest.fixture
def softhsm(tmp_path):
    assert os.path.exists(SOFTHSM), "softhsm2 is not installed (make test installs it)"
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    env = {"SOFTHSM2_CONF": str(conf)}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label",
                    "gh-test", "--so-pin", "5678", "--pin", "1234"],
                   check=True, capture_output=True, env={**os.environ, **env})
    return {**env, "GATEHOUSE_KMS_PROVIDER": "pkcs11",
            "GATEHOUSE_PKCS11_MODULE": SOFTHSM,
            "GATEHOUSE_PKCS11_TOKEN": "gh-test",
            "GATEHOUSE_PKCS11_PIN": "1234"}


def test_pkcs11_provider_serves_and_refuses_a_wrong_pin(server_factory, softhsm):
    srv = server_factory(init=False, start=False)
    srv.init(env=softhsm)
    key, _ = key_paths(srv)
    assert not os.path.exists(key)  # the master key lives in the token
    srv.start(env=softhsm)
    s = srv.login()
    assert s.get(srv.api("/me")).status_code == 200
    r = s.post(srv.api("/users"), json={"username": "hsm-user"})
    assert r.status_code == 201, r.text
    srv.stop()
    err = serve_fails(srv, env={**softhsm, "GATEHOUSE_PKCS11_PIN": "9999"})
    assert "PIN" in err, err
    srv.start(env=softhsm)
    srv.cli("keys", "rotate", "--master", env=softhsm)
    assert srv.login().get(srv.api("/me")).status_code == 200


@pytest.mark.slow
def test_reencryption_killed_midway_resumes(server, admin):
    import json
    server.create_user(admin, "before-crash", password=USER_PASSWORD)
    server.stop()

    def storage_state():
        st = json.loads(server.cli("keys", "status", "--json").stdout)
        org = next(v for v in st["orgs"].values() if v.get("slug") == "acme")
        return org["data_keys"]["storage"], org["storage_oldest_version_in_use"]

    # The rotation itself is instant; the re-encryption that follows first
    # waits a few seconds for running servers. Kill it in that window: the
    # new keys exist, the data is still under the old ones.
    p = subprocess.Popen([server.binary, "keys", "rotate", "--data-dir",
                          str(server.data_dir), "--org", "acme"],
                         env=child_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and p.poll() is None:
        versions, _ = storage_state()
        if len(versions) == 2:
            break
        time.sleep(0.05)
    assert p.poll() is None, "the rotation finished before it could be killed"
    p.kill()
    p.wait()
    versions, oldest = storage_state()
    assert len(versions) == 2 and oldest == min(versions)
    # Resuming finishes the job and retires the old version.
    server.cli("keys", "reencrypt", "--org", "acme")
    versions, oldest = storage_state()
    assert versions == [oldest] and oldest == 2
    server.start()
    s = server.login()
    r = s.get(server.api("/users") + "?q=before-crash")
    assert [u["username"] for u in r.json()["users"]] == ["before-crash"]
